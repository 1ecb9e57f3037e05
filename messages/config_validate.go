package messages

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Validate reports the first thing wrong with c, naming the field. It
// expects defaults to have been applied.
func (c *Config) Validate() error {
	if err := c.validateCommon(); err != nil {
		return err
	}
	if err := c.validateMode(); err != nil {
		return err
	}
	if err := c.validateApplicable(); err != nil {
		return err
	}
	switch c.Checker {
	case CheckerTCP:
		return c.validateTCP()
	case CheckerHTTP:
		return c.validateHTTP()
	case CheckerDNS:
		return c.validateDNS()
	case CheckerRADIUS:
		return c.validateRADIUS()
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
		return errors.New("ip: missing")
	case c.IP.Zone() != "":
		return fmt.Errorf("ip: zones are not supported: %s", c.IP)
	case c.Checker == CheckerICMP && c.Port != 0:
		return fmt.Errorf("port: not used by checker icmp, got %d", c.Port)
	case c.Checker != CheckerICMP && (c.Port < 1 || c.Port > 65535):
		return fmt.Errorf("port: must be within 1-65535, got %d", c.Port)
	}
	return nil
}

// validateMode checks Mode, Mark and Backend together, as Seesaw's Engine
// sets them: a mark for DSR and TUN only, and never a DSR or TUN ping.
func (c *Config) validateMode() error {
	switch c.Mode {
	case ModePlain, modePlainName:
		if c.Mark != 0 {
			return fmt.Errorf("mark: not used in plain mode, got %d", c.Mark)
		}
		if c.Backend.IsValid() {
			return errors.New("backend: not used in plain mode")
		}
		return nil
	case ModeDSR, ModeTUN:
	default:
		return fmt.Errorf("mode: unknown mode %q (want plain, dsr or tun)", c.Mode)
	}
	switch {
	case c.Checker == CheckerICMP:
		return fmt.Errorf("mode: checker icmp cannot run in %s mode", c.Mode)
	case c.Mark == 0:
		return fmt.Errorf("mark: required in %s mode", c.Mode)
	case c.Mark < 0 || int64(c.Mark) > MaxMark:
		// NOTE: compared as int64, since MaxMark overflows a 32-bit int.
		return fmt.Errorf("mark: must be within 1-%d, got %d",
			int64(MaxMark), c.Mark)
	case c.Backend.Zone() != "":
		return fmt.Errorf("backend: zones are not supported: %s", c.Backend)
	}
	return nil
}

// validateApplicable rejects fields that the config's checker ignores, so a
// typo in checker_type does not silently drop half a config.
func (c *Config) validateApplicable() error {
	used := map[CheckerType][]string{
		CheckerTCP: {"send", "receive", "secure", "tls_verify", "host"},
		CheckerHTTP: {
			"method", "path", "host", "proxy", "expected_codes", "response",
			"secure", "tls_verify",
		},
		CheckerDNS: {
			"query", "query_type", "expected_ips", "expected_answers",
		},
		CheckerUDP:    {"send", "receive"},
		CheckerRADIUS: {"username", "password", "secret", "response"},
	}[c.Checker]
	set := map[string]bool{
		"send":             c.Send != "",
		"receive":          c.Receive != "",
		"secure":           c.Secure,
		"tls_verify":       c.TLSVerify,
		"method":           c.Method != "",
		"path":             c.Path != "",
		"host":             c.Host != "",
		"proxy":            c.Proxy,
		"expected_codes":   len(c.ExpectedCodes) > 0,
		"response":         c.Response != "",
		"query":            c.Query != "",
		"query_type":       c.QueryType != "",
		"expected_ips":     len(c.ExpectedIPs) > 0,
		"expected_answers": len(c.ExpectedAnswers) > 0,
		"username":         c.Username != "",
		"password":         c.Password != "",
		"secret":           c.Secret != "",
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
	"proxy", "expected_codes", "response", "query", "query_type",
	"expected_ips", "expected_answers", "username", "password", "secret",
}

func (c *Config) validateTCP() error {
	if c.Host == "" {
		return nil
	}
	if !c.Secure {
		return errors.New("host: only used by tcp with secure (as the TLS server name)")
	}
	return validateHost(c.Host)
}

func (c *Config) validateHTTP() error {
	if !isToken(c.Method) {
		return fmt.Errorf("method: invalid HTTP method %q", c.Method)
	}
	if !strings.HasPrefix(c.Path, "/") {
		return fmt.Errorf("path: must start with '/', got %q", c.Path)
	}
	if strings.ContainsAny(c.Path, " \r\n") {
		return errors.New("path: must not contain spaces or line breaks")
	}
	if _, err := url.ParseRequestURI(c.Path); err != nil {
		return fmt.Errorf("path: %q is not a request URI", c.Path)
	}
	if err := validateHost(c.Host); err != nil {
		return err
	}
	for _, code := range c.ExpectedCodes {
		if code < 100 || code > 599 {
			return fmt.Errorf("expected_codes: %d is not an HTTP status code", code)
		}
	}
	return nil
}

// validateHost checks a Host header value: a host name or IP literal with
// an optional port, which also serves as the TLS server name.
func validateHost(host string) error {
	if host == "" {
		return nil
	}
	if strings.ContainsAny(host, " \t\r\n/?#@") {
		return fmt.Errorf("host: invalid Host header %q", host)
	}
	if _, err := url.Parse("http://" + host + "/"); err != nil {
		return fmt.Errorf("host: invalid Host header %q", host)
	}
	return nil
}

func (c *Config) validateDNS() error {
	if c.Query == "" {
		return errors.New("query: missing")
	}
	if !isDomainName(c.Query) {
		return fmt.Errorf("query: invalid domain name %q", c.Query)
	}
	switch c.QueryType {
	case "A", "AAAA":
		if len(c.ExpectedAnswers) > 0 {
			return fmt.Errorf("expected_answers: not used by query_type %s "+
				"(use expected_ips)", c.QueryType)
		}
		return c.validateExpectedIPs()
	case "CNAME", "NS", "MX", "PTR", "TXT", "SOA":
	default:
		return fmt.Errorf("query_type: unsupported type %q "+
			"(want A, AAAA, CNAME, NS, MX, PTR, TXT or SOA)", c.QueryType)
	}
	if len(c.ExpectedIPs) > 0 {
		return fmt.Errorf("expected_ips: not used by query_type %s "+
			"(use expected_answers)", c.QueryType)
	}
	for _, a := range c.ExpectedAnswers {
		if _, err := NormalizeAnswer(c.QueryType, a); err != nil {
			return fmt.Errorf("expected_answers: %w", err)
		}
	}
	return nil
}

// validateExpectedIPs checks that each expected address can answer the
// config's A or AAAA query.
func (c *Config) validateExpectedIPs() error {
	wantV4 := c.QueryType == "A"
	for _, ip := range c.ExpectedIPs {
		if ip.Zone() != "" {
			return fmt.Errorf("expected_ips: zones are not supported: %s", ip)
		}
		if ip.Is4() != wantV4 {
			return fmt.Errorf("expected_ips: %s cannot answer a %s query",
				ip, c.QueryType)
		}
	}
	return nil
}

func (c *Config) validateRADIUS() error {
	switch {
	case c.Username == "":
		return errors.New("username: missing")
	case c.Secret == "":
		return errors.New("secret: missing")
	case len(c.Username) > 253:
		return fmt.Errorf("username: longer than 253 bytes")
	case len(c.Password) > 128:
		return fmt.Errorf("password: longer than 128 bytes")
	}
	switch c.Response {
	case RADIUSAccept, RADIUSReject, RADIUSChallenge, RADIUSAny:
		return nil
	}
	return fmt.Errorf("response: unknown RADIUS response %q "+
		"(want accept, reject, challenge or any)", c.Response)
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
