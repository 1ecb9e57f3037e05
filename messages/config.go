package messages

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// CheckerType names the kind of probe a check runs.
type CheckerType string

// The checker types the server can run.
const (
	CheckerTCP    CheckerType = "tcp"
	CheckerHTTP   CheckerType = "http"
	CheckerDNS    CheckerType = "dns"
	CheckerICMP   CheckerType = "icmp"
	CheckerUDP    CheckerType = "udp"
	CheckerRADIUS CheckerType = "radius"
)

// CheckerTypes lists every checker type the server can run, in a stable
// order.
var CheckerTypes = []CheckerType{
	CheckerTCP, CheckerHTTP, CheckerDNS, CheckerICMP, CheckerUDP, CheckerRADIUS,
}

// Mode says how a probe reaches its backend, as Seesaw's healthcheck modes
// do. The zero value is ModePlain.
type Mode string

// The modes of a check.
const (
	// ModePlain probes the backend at IP directly. It is the zero value;
	// "plain" on the wire means the same.
	ModePlain Mode = ""
	// ModeDSR probes the VIP at IP with a socket mark that the kernel's
	// IPVS forwards to the backend by direct routing.
	ModeDSR Mode = "dsr"
	// ModeTUN probes the VIP at IP with a socket mark that the kernel's
	// IPVS forwards to the backend through an IP-in-IP tunnel.
	ModeTUN Mode = "tun"
)

// modePlainName is how ModePlain is spelt on the wire and in messages.
const modePlainName = "plain"

// String returns the mode's name on the wire: "plain", "dsr" or "tun".
func (m Mode) String() string {
	if m == ModePlain {
		return modePlainName
	}
	return string(m)
}

// MaxMark is the largest socket mark: SO_MARK is 32 bits.
const MaxMark = 1<<32 - 1

// The answers a RADIUS check may expect in Config.Response.
const (
	RADIUSAccept    = "accept"
	RADIUSReject    = "reject"
	RADIUSChallenge = "challenge"
	RADIUSAny       = "any"
)

// Defaults applied to fields a config leaves out; they are Seesaw's.
const (
	DefaultInterval       = 5 * time.Second
	DefaultTimeout        = 30 * time.Second
	DefaultHTTPMethod     = "GET"
	DefaultHTTPPath       = "/"
	DefaultHTTPCode       = 200
	DefaultQueryType      = "A"
	DefaultRADIUSResponse = RADIUSAccept
)

// Config is the desired configuration of one check. A Config is a value:
// copy it freely, but do not mutate the slices of one that has been sent.
type Config struct {
	// ID identifies the check; it is unique within a config set.
	ID uint64
	// Interval is the time between the starts of two probes. Default 5s.
	Interval time.Duration
	// Timeout bounds one probe. Default 30s.
	Timeout time.Duration
	// Retries is how many consecutive failures a healthy check tolerates
	// before it becomes unhealthy. Default 0.
	Retries int
	// Checker is the kind of probe.
	Checker CheckerType
	// IP and Port are where the probe connects: the backend in plain
	// mode, the VIP in DSR and TUN modes. Port is 0 for icmp, which has
	// none, and 1-65535 for every other checker.
	IP   netip.Addr
	Port int

	// Mode is how the probe reaches the backend; default ModePlain.
	// Mark is the SO_MARK (1 to MaxMark) set on the probe's socket: it is
	// required in DSR and TUN modes and not allowed in plain mode, where
	// 0 means none. Backend, optional in DSR and TUN modes, is the backend
	// behind the VIP; it is only shown in logs (Seesaw's Target.Host).
	Mode    Mode
	Mark    int
	Backend netip.Addr

	// Secure wraps TCP and HTTP probes in TLS; TLSVerify then verifies the
	// server's certificate against the system roots.
	Secure    bool
	TLSVerify bool

	// Send is written after a TCP connect, or sent as a UDP datagram;
	// Receive, if set, must be a prefix of what the server answers.
	Send    string
	Receive string

	// Method, Path and Host make the HTTP request. Host sets the Host
	// header (empty means ip:port) and the TLS server name (SNI) of http
	// and of tcp with Secure; empty means the IP literal, without SNI.
	// Proxy sends the request URI in absolute form,
	// http(s)://<host or ip:port><path>, as a request to a proxy; the
	// probe still connects to IP and Port. ExpectedCodes lists the status
	// codes that count as success (default 200).
	Method        string
	Path          string
	Host          string
	Proxy         bool
	ExpectedCodes []int

	// Response is, for http, a prefix the body must start with, if set;
	// for radius, the reply that counts as success: RADIUSAccept
	// (default), RADIUSReject, RADIUSChallenge or RADIUSAny.
	Response string

	// Query is the DNS name asked with type QueryType (default A).
	// ExpectedIPs, for A and AAAA, and ExpectedAnswers, for the other
	// types, if set, must hold one of the answers; see NormalizeAnswer
	// for the form of an answer.
	Query           string
	QueryType       string
	ExpectedIPs     []netip.Addr
	ExpectedAnswers []string

	// Username, Password and Secret make a radius Access-Request; the
	// shared Secret also authenticates the reply.
	Username string
	Password string
	Secret   string
}

// Target returns the address the probe connects to, as host:port, or the
// IP alone for icmp.
func (c *Config) Target() string {
	if c.Checker == CheckerICMP {
		return c.IP.String()
	}
	return netip.AddrPortFrom(c.IP, uint16(c.Port)).String()
}

// SameProbe reports whether c and o run the same probe against the same
// target, differing at most in Interval, Timeout and Retries. A check whose
// config changes only in those keeps its state.
func (c *Config) SameProbe(o *Config) bool {
	// NOTE: field by field, not reflect.DeepEqual: a reload of 100,000
	// checks compares every one, and TestConfigEqualSeesEveryField fails
	// when a field is added to Config but not here.
	return c.ID == o.ID && c.Checker == o.Checker &&
		c.IP == o.IP && c.Port == o.Port &&
		c.Mode == o.Mode && c.Mark == o.Mark && c.Backend == o.Backend &&
		c.Secure == o.Secure && c.TLSVerify == o.TLSVerify &&
		c.Send == o.Send && c.Receive == o.Receive &&
		c.Method == o.Method && c.Path == o.Path && c.Host == o.Host &&
		c.Proxy == o.Proxy && c.Response == o.Response &&
		c.Query == o.Query && c.QueryType == o.QueryType &&
		c.Username == o.Username && c.Password == o.Password &&
		c.Secret == o.Secret &&
		slices.Equal(c.ExpectedCodes, o.ExpectedCodes) &&
		slices.Equal(c.ExpectedIPs, o.ExpectedIPs) &&
		slices.Equal(c.ExpectedAnswers, o.ExpectedAnswers)
}

// Equal reports whether c and o are the same config.
func (c *Config) Equal(o *Config) bool {
	return c.SameProbe(o) && c.Interval == o.Interval &&
		c.Timeout == o.Timeout && c.Retries == o.Retries
}

// String describes the check for logs, e.g. "http GET / 10.0.0.1:80", or
// "tcp 10.0.0.1:80 dsr (via 192.168.0.7 mark 65536)" outside plain mode.
func (c *Config) String() string {
	var s string
	switch c.Checker {
	case CheckerHTTP:
		s = fmt.Sprintf("http %s %s %s", c.Method, c.Path, c.Target())
	case CheckerDNS:
		s = fmt.Sprintf("dns %s %s %s", c.Query, c.QueryType, c.Target())
	default:
		s = fmt.Sprintf("%s %s", c.Checker, c.Target())
	}
	if c.Mode == ModePlain {
		return s
	}
	if c.Backend.IsValid() {
		return fmt.Sprintf("%s %s (via %s mark %d)", s, c.Mode, c.Backend, c.Mark)
	}
	return fmt.Sprintf("%s %s (mark %d)", s, c.Mode, c.Mark)
}

// ApplyDefaults fills the fields left zero with their defaults.
func (c *Config) ApplyDefaults() {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Mode == modePlainName {
		c.Mode = ModePlain
	}
	switch c.Checker {
	case CheckerHTTP:
		if c.Method == "" {
			c.Method = DefaultHTTPMethod
		}
		if c.Path == "" {
			c.Path = DefaultHTTPPath
		}
		if len(c.ExpectedCodes) == 0 {
			c.ExpectedCodes = []int{DefaultHTTPCode}
		}
	case CheckerDNS:
		if c.QueryType == "" {
			c.QueryType = DefaultQueryType
		}
		c.QueryType = strings.ToUpper(c.QueryType)
	case CheckerRADIUS:
		if c.Response == "" {
			c.Response = DefaultRADIUSResponse
		}
	}
}
