package enginesim

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/lbhealth/hcsupervisor/bridge"
)

// The check types of Check.Type: those of Seesaw's cluster config, in
// lower case.
const (
	TypeTCP    = "tcp"
	TypeTCPTLS = "tcp_tls"
	TypeHTTP   = "http"
	TypeHTTPS  = "https"
	TypeDNS    = "dns"
	TypeICMP   = "icmp"
	TypeUDP    = "udp"
	TypeRADIUS = "radius"
)

// The healthcheck modes of Check.Mode.
const (
	ModePlain = "plain" // probe the backend itself
	ModeDSR   = "dsr"   // probe the VIP, marked for direct routing
	ModeTUN   = "tun"   // probe the VIP, marked for IP-in-IP
)

// Defaults the Engine applies to a healthcheck that leaves a field out.
const (
	DefaultInterval       = 10 * time.Second
	DefaultTimeout        = 5 * time.Second
	DefaultHTTPRequest    = "/"
	DefaultHTTPMethod     = "GET"
	DefaultHTTPCode       = 200
	DefaultRADIUSResponse = "accept"
)

// The Engine's pool of socket marks for DSR and TUN checks: MarkPoolSize
// marks from MarkBase on.
const (
	MarkBase     = 1 << 16
	MarkPoolSize = 16000
)

// Check describes one healthcheck the way Seesaw's cluster config does,
// for one backend. The Server builds the Engine's wire config from it as
// the Engine's newConfig does. A Check is a value; the zero value is not
// valid (Type, IP and, except for icmp, Port are required).
type Check struct {
	// ID is the check's ID on the wire. Zero means the Server numbers it
	// as the Engine does: it keeps its ID while its content is unchanged.
	ID uint64
	// Type is one of the Type constants; case does not matter.
	Type string
	// IP is the address probed: the backend in plain mode, the VIP in
	// DSR and TUN modes.
	IP string
	// Host is the backend in DSR and TUN modes, where it is required. In
	// plain mode it must be empty or equal to IP.
	Host string
	// Port is the port probed, 1-65535; it must be 0 for icmp.
	Port int
	// Interval is the time between probes; zero means DefaultInterval.
	Interval time.Duration
	// Timeout bounds a probe; zero means DefaultTimeout.
	Timeout time.Duration
	// Retries is how many failures a healthy check tolerates.
	Retries int
	// Send is what tcp and udp checks send, the request of http checks
	// (default "/"), the question's name of dns checks, and
	// "user:password:secret" for radius checks.
	Send string
	// Receive is what tcp and udp checks expect, the body prefix of http
	// checks, the answer of dns checks, and the response of radius checks
	// (default "accept").
	Receive string
	// Code is the status code http checks expect; zero means 200.
	Code int
	// Method is the method of http checks (default GET) and the query
	// type of dns checks (e.g. "A"), where it is required.
	Method string
	// Proxy sends the http request as a proxy request.
	Proxy bool
	// TLSVerify verifies the certificate of https and tcp_tls checks; nil
	// means true, as in Seesaw.
	TLSVerify *bool
	// Mode is one of the Mode constants; empty means plain.
	Mode string
	// Mark is the socket mark of DSR and TUN checks; zero means one from
	// the Engine's pool, shared by the checks of a backend and mode. It
	// must be zero in plain mode.
	Mark int
}

// CheckError reports what is wrong with one check of a list. It wraps
// ErrInvalidCheck.
type CheckError struct {
	// Index is the check's position in the list, from 0.
	Index int
	// Field is the file's name of the offending field, e.g. "port";
	// empty when the error is about the whole check.
	Field string
	// Reason says what is wrong.
	Reason string
}

// Error returns the check's index, the field and the reason.
func (e *CheckError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("check %d: %s", e.Index, e.Reason)
	}
	return fmt.Sprintf("check %d: %s: %s", e.Index, e.Field, e.Reason)
}

// Unwrap returns ErrInvalidCheck.
func (e *CheckError) Unwrap() error { return ErrInvalidCheck }

// fieldError returns the CheckError of a check whose index is not yet
// known.
func fieldError(field, format string, args ...any) *CheckError {
	return &CheckError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ValidateChecks reports every check the Server would reject, as one
// *CheckError each, joined; nil when all are valid. Two checks must not
// share an explicit ID.
func ValidateChecks(checks []Check) error {
	_, err := normalizeAll(checks)
	return err
}

// spec is a normalized Check: defaults applied, addresses parsed. It is
// comparable; two checks with equal specs are the same check to the
// Engine.
type spec struct {
	typ       string
	ip, host  netip.Addr
	port      int
	interval  time.Duration
	timeout   time.Duration
	retries   int
	send      string
	receive   string
	code      int
	method    string
	proxy     bool
	tlsVerify bool
	mode      int
	mark      int
}

// normalizeAll normalizes checks, reporting every invalid one and every
// repeated explicit ID.
func normalizeAll(checks []Check) ([]spec, error) {
	specs := make([]spec, len(checks))
	seen := make(map[uint64]int)
	var errs []error
	for i, c := range checks {
		sp, err := normalize(c)
		if err != nil {
			err.Index = i
			errs = append(errs, err)
			continue
		}
		specs[i] = sp
		if c.ID == 0 {
			continue
		}
		if j, ok := seen[c.ID]; ok {
			errs = append(errs, &CheckError{Index: i, Field: "id",
				Reason: fmt.Sprintf("%d is also the id of check %d", c.ID, j)})
			continue
		}
		seen[c.ID] = i
	}
	return specs, errors.Join(errs...)
}

// normalize validates c and returns its spec.
func normalize(c Check) (spec, *CheckError) {
	sp := spec{
		typ:       strings.ToLower(c.Type),
		port:      c.Port,
		interval:  c.Interval,
		timeout:   c.Timeout,
		retries:   c.Retries,
		send:      c.Send,
		receive:   c.Receive,
		code:      c.Code,
		method:    c.Method,
		proxy:     c.Proxy,
		tlsVerify: c.TLSVerify == nil || *c.TLSVerify,
		mark:      c.Mark,
	}
	steps := []func(*spec, Check) *CheckError{
		normalizeType, normalizeAddrs, normalizePort, normalizeTiming,
		normalizeTypeFields,
	}
	for _, step := range steps {
		if err := step(&sp, c); err != nil {
			return spec{}, err
		}
	}
	return sp, nil
}

// modes maps Check.Mode to the wire's Target.Mode.
var modes = map[string]int{
	"":        bridge.ModePlain,
	ModePlain: bridge.ModePlain,
	ModeDSR:   bridge.ModeDSR,
	ModeTUN:   bridge.ModeTUN,
}

// normalizeType checks the type and the mode.
func normalizeType(sp *spec, c Check) *CheckError {
	switch sp.typ {
	case TypeTCP, TypeTCPTLS, TypeHTTP, TypeHTTPS, TypeDNS, TypeICMP,
		TypeUDP, TypeRADIUS:
	case "":
		return fieldError("type", "missing")
	default:
		return fieldError("type", "unknown type %q", c.Type)
	}
	mode, ok := modes[strings.ToLower(c.Mode)]
	if !ok {
		return fieldError("mode", "want plain, dsr or tun, got %q", c.Mode)
	}
	sp.mode = mode

	// The Engine refuses ICMP outside plain mode.
	if sp.typ == TypeICMP && mode != bridge.ModePlain {
		return fieldError("mode", "icmp checks cannot use %s mode", c.Mode)
	}
	return nil
}

// normalizeAddrs parses IP and Host and checks them against the mode.
func normalizeAddrs(sp *spec, c Check) *CheckError {
	ip, err := parseAddr("ip", c.IP)
	if err != nil {
		return err
	}
	sp.ip = ip

	if sp.mode == bridge.ModePlain {
		return normalizePlainHost(sp, c)
	}
	if c.Host == "" {
		return fieldError("host", "missing: the backend of a dsr or tun check")
	}
	host, err := parseAddr("host", c.Host)
	if err != nil {
		return err
	}
	if host.Is4() != ip.Is4() {
		return fieldError("host", "%s and ip %s differ in family", host, ip)
	}
	sp.host = host
	if c.Mark < 0 {
		return fieldError("mark", "must not be negative, got %d", c.Mark)
	}
	return nil
}

// normalizePlainHost checks Host and Mark of a plain check, whose backend
// is its IP.
func normalizePlainHost(sp *spec, c Check) *CheckError {
	sp.host = sp.ip
	if c.Host != "" {
		host, err := parseAddr("host", c.Host)
		if err != nil {
			return err
		}
		if host != sp.ip {
			return fieldError("host", "%s differs from ip %s in plain mode",
				host, sp.ip)
		}
	}
	if c.Mark != 0 {
		return fieldError("mark", "only dsr and tun checks have one, got %d", c.Mark)
	}
	return nil
}

// parseAddr parses the address in field, mapping IPv4-mapped IPv6
// addresses to IPv4.
func parseAddr(field, s string) (netip.Addr, *CheckError) {
	if s == "" {
		return netip.Addr{}, fieldError(field, "missing")
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fieldError(field, "%q is not an IP address", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fieldError(field, "zones are not supported: %s", s)
	}
	return a.Unmap(), nil
}

// normalizePort checks the port; icmp has none.
func normalizePort(sp *spec, c Check) *CheckError {
	switch {
	case sp.typ == TypeICMP && c.Port != 0:
		return fieldError("port", "must be 0 for icmp, got %d", c.Port)
	case sp.typ != TypeICMP && (c.Port < 1 || c.Port > 65535):
		return fieldError("port", "must be within 1-65535, got %d", c.Port)
	}
	return nil
}

// normalizeTiming applies the Engine's defaults to Interval and Timeout.
func normalizeTiming(sp *spec, c Check) *CheckError {
	switch {
	case c.Interval < 0:
		return fieldError("interval", "must not be negative, got %v", c.Interval)
	case c.Timeout < 0:
		return fieldError("timeout", "must not be negative, got %v", c.Timeout)
	case c.Retries < 0:
		return fieldError("retries", "must not be negative, got %d", c.Retries)
	}
	if sp.interval == 0 {
		sp.interval = DefaultInterval
	}
	if sp.timeout == 0 {
		sp.timeout = DefaultTimeout
	}
	return nil
}

// normalizeTypeFields checks the fields whose meaning depends on the type.
func normalizeTypeFields(sp *spec, c Check) *CheckError {
	switch sp.typ {
	case TypeHTTP, TypeHTTPS:
		if c.Code != 0 && (c.Code < 100 || c.Code > 999) {
			return fieldError("code", "want 0 or 100-999, got %d", c.Code)
		}
	case TypeDNS:
		if _, err := dnsType(c.Method); err != nil {
			return err
		}
	case TypeRADIUS:
		if _, err := radiusCredentials(c.Send); err != nil {
			return err
		}
	}
	return nil
}

// dnsType returns the query type the method of a dns check names, e.g.
// "A", in any case, as the Engine looks it up.
func dnsType(method string) (uint16, *CheckError) {
	if method == "" {
		return 0, fieldError("method", "missing: the query type of a dns check, e.g. A")
	}
	t, ok := dns.StringToType[strings.ToUpper(method)]
	if !ok {
		return 0, fieldError("method", "unknown DNS type %q", method)
	}
	return t, nil
}

// radiusCredentials splits the send of a radius check into user, password
// and secret.
func radiusCredentials(send string) ([]string, *CheckError) {
	parts := strings.Split(send, ":")
	if len(parts) != 3 {
		// NOTE: the text leaves send out: it holds a password.
		return nil, fieldError("send", "want user:password:secret, got %d parts",
			len(parts))
	}
	return parts, nil
}
