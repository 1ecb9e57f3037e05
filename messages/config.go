package messages

import (
	"fmt"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"
)

// CheckerType names the kind of probe a check runs.
type CheckerType string

// The checker types the server can run.
const (
	CheckerTCP  CheckerType = "tcp"
	CheckerHTTP CheckerType = "http"
	CheckerDNS  CheckerType = "dns"
)

// CheckerTypes lists every checker type the server can run, in a stable
// order.
var CheckerTypes = []CheckerType{CheckerTCP, CheckerHTTP, CheckerDNS}

// Defaults applied to fields a config leaves out; they are Seesaw's.
const (
	DefaultInterval   = 5 * time.Second
	DefaultTimeout    = 30 * time.Second
	DefaultHTTPMethod = "GET"
	DefaultHTTPPath   = "/"
	DefaultHTTPCode   = 200
	DefaultQueryType  = "A"
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
	// IP and Port are where the probe connects.
	IP   netip.Addr
	Port int

	// Secure wraps TCP and HTTP probes in TLS; TLSVerify then verifies the
	// server's certificate against the system roots.
	Secure    bool
	TLSVerify bool

	// Send is written after a TCP connect; Receive, if set, must be a prefix
	// of what the server answers.
	Send    string
	Receive string

	// Method, Path and Host make the HTTP request (Host sets the Host
	// header; empty means ip:port). ExpectedCodes lists the status codes
	// that count as success (default 200); Response, if set, must be a
	// prefix of the body.
	Method        string
	Path          string
	Host          string
	ExpectedCodes []int
	Response      string

	// Query is the DNS name asked with type QueryType (default A);
	// ExpectedIPs, if set, must contain an address in the answer.
	Query       string
	QueryType   string
	ExpectedIPs []netip.Addr
}

// Target returns the address the probe connects to, as host:port.
func (c *Config) Target() string {
	return netip.AddrPortFrom(c.IP, uint16(c.Port)).String()
}

// SameProbe reports whether c and o run the same probe against the same
// target, differing at most in Interval, Timeout and Retries. A check whose
// config changes only in those keeps its state.
func (c *Config) SameProbe(o *Config) bool {
	a, b := *c, *o
	a.Interval, a.Timeout, a.Retries = 0, 0, 0
	b.Interval, b.Timeout, b.Retries = 0, 0, 0
	a.ExpectedCodes, b.ExpectedCodes = nil, nil
	a.ExpectedIPs, b.ExpectedIPs = nil, nil
	return reflect.DeepEqual(a, b) &&
		slices.Equal(c.ExpectedCodes, o.ExpectedCodes) &&
		slices.Equal(c.ExpectedIPs, o.ExpectedIPs)
}

// Equal reports whether c and o are the same config.
func (c *Config) Equal(o *Config) bool {
	return c.SameProbe(o) && c.Interval == o.Interval &&
		c.Timeout == o.Timeout && c.Retries == o.Retries
}

// String describes the check for logs, e.g. "http GET / 10.0.0.1:80".
func (c *Config) String() string {
	switch c.Checker {
	case CheckerHTTP:
		return fmt.Sprintf("http %s %s %s", c.Method, c.Path, c.Target())
	case CheckerDNS:
		return fmt.Sprintf("dns %s %s %s", c.Query, c.QueryType, c.Target())
	default:
		return fmt.Sprintf("%s %s", c.Checker, c.Target())
	}
}

// ApplyDefaults fills the fields left zero with their defaults.
func (c *Config) ApplyDefaults() {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
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
	}
}

// Validate reports the first thing wrong with c, naming the field. It
// expects defaults to have been applied.
func (c *Config) Validate() error {
	if err := c.validateCommon(); err != nil {
		return err
	}
	if err := c.validateApplicable(); err != nil {
		return err
	}
	switch c.Checker {
	case CheckerHTTP:
		return c.validateHTTP()
	case CheckerDNS:
		return c.validateDNS()
	}
	return nil
}

func (c *Config) validateCommon() error {
	switch {
	case !slices.Contains(CheckerTypes, c.Checker):
		return fmt.Errorf("checker_type: unknown checker %q", c.Checker)
	case c.Interval <= 0:
		return fmt.Errorf("interval: must be positive, got %v", c.Interval)
	case c.Timeout <= 0:
		return fmt.Errorf("timeout: must be positive, got %v", c.Timeout)
	case c.Retries < 0:
		return fmt.Errorf("retries: must not be negative, got %d", c.Retries)
	case !c.IP.IsValid():
		return fmt.Errorf("ip: missing")
	case c.IP.Zone() != "":
		return fmt.Errorf("ip: zones are not supported: %s", c.IP)
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("port: must be within 1-65535, got %d", c.Port)
	}
	return nil
}

// validateApplicable rejects fields that the config's checker ignores, so a
// typo in checker_type does not silently drop half a config.
func (c *Config) validateApplicable() error {
	used := map[CheckerType][]string{
		CheckerTCP:  {"send", "receive", "secure", "tls_verify"},
		CheckerHTTP: {"method", "path", "host", "expected_codes", "response", "secure", "tls_verify"},
		CheckerDNS:  {"query", "query_type", "expected_ips"},
	}[c.Checker]
	set := map[string]bool{
		"send":           c.Send != "",
		"receive":        c.Receive != "",
		"secure":         c.Secure,
		"tls_verify":     c.TLSVerify,
		"method":         c.Method != "",
		"path":           c.Path != "",
		"host":           c.Host != "",
		"expected_codes": len(c.ExpectedCodes) > 0,
		"response":       c.Response != "",
		"query":          c.Query != "",
		"query_type":     c.QueryType != "",
		"expected_ips":   len(c.ExpectedIPs) > 0,
	}
	for _, field := range configFieldOrder {
		if set[field] && !slices.Contains(used, field) {
			return fmt.Errorf("%s: not used by checker %s", field, c.Checker)
		}
	}
	return nil
}

// configFieldOrder fixes the order in which inapplicable fields are
// reported, so errors are deterministic.
var configFieldOrder = []string{
	"send", "receive", "secure", "tls_verify", "method", "path", "host",
	"expected_codes", "response", "query", "query_type", "expected_ips",
}

func (c *Config) validateHTTP() error {
	if !isToken(c.Method) {
		return fmt.Errorf("method: invalid HTTP method %q", c.Method)
	}
	if !strings.HasPrefix(c.Path, "/") {
		return fmt.Errorf("path: must start with '/', got %q", c.Path)
	}
	if strings.ContainsAny(c.Path, " \r\n") {
		return fmt.Errorf("path: must not contain spaces or line breaks")
	}
	if _, err := url.ParseRequestURI(c.Path); err != nil {
		return fmt.Errorf("path: %q is not a request URI", c.Path)
	}
	if strings.ContainsAny(c.Host, " \r\n/") {
		return fmt.Errorf("host: invalid Host header %q", c.Host)
	}
	for _, code := range c.ExpectedCodes {
		if code < 100 || code > 599 {
			return fmt.Errorf("expected_codes: %d is not an HTTP status code", code)
		}
	}
	return nil
}

func (c *Config) validateDNS() error {
	if c.Query == "" {
		return fmt.Errorf("query: missing")
	}
	if !isDomainName(c.Query) {
		return fmt.Errorf("query: invalid domain name %q", c.Query)
	}
	var wantV4 bool
	switch c.QueryType {
	case "A":
		wantV4 = true
	case "AAAA":
	default:
		return fmt.Errorf("query_type: unsupported type %q (want A or AAAA)", c.QueryType)
	}
	for _, ip := range c.ExpectedIPs {
		if ip.Zone() != "" {
			return fmt.Errorf("expected_ips: zones are not supported: %s", ip)
		}
		if ip.Is4() != wantV4 {
			return fmt.Errorf("expected_ips: %s cannot answer a %s query", ip, c.QueryType)
		}
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token, as an HTTP method must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// isDomainName reports whether s is a plausible DNS name: labels of 1-63
// bytes without spaces, at most 253 bytes in all, optionally fully
// qualified.
func isDomainName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || strings.ContainsAny(label, " \t\r\n") {
			return false
		}
	}
	return true
}
