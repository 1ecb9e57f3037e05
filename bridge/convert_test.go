package bridge

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/netip"
	"net/rpc"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/lbhealth/hcsupervisor/messages"
)

var update = flag.Bool("update", false, "rewrite the golden files this package writes")

// addrs compares netip.Addr values, which cmp cannot look into.
var addrs = cmpopts.EquateComparable(netip.Addr{})

// v4 is 192.0.2.1 in the Engine's 16-byte form.
var v4 = net.ParseIP("192.0.2.1")

// tcpTarget and udpTarget are plain targets on v4.
func tcpTarget(port int) Target { return Target{IP: v4, Port: port, Proto: ProtoTCP} }
func udpTarget(port int) Target { return Target{IP: v4, Port: port, Proto: ProtoUDP} }

// config returns a Seesaw config of c with ID 7, interval 2s, timeout 1s
// and one retry.
func config(c Checker) *Config {
	return &Config{Id: 7, Interval: 2 * time.Second, Timeout: time.Second,
		Retries: 1, Checker: c}
}

// with returns config(c) changed by f.
func with(c Checker, f func(*Config)) *Config {
	cfg := config(c)
	f(cfg)
	return cfg
}

// want returns the config ToConfig makes of config(...) with the checker's
// fields set by f.
func want(checker messages.CheckerType, f func(*messages.Config)) messages.Config {
	c := messages.Config{
		ID:       7,
		Interval: 2 * time.Second,
		Timeout:  time.Second,
		Retries:  1,
		Checker:  checker,
		IP:       netip.MustParseAddr("192.0.2.1"),
	}
	f(&c)
	return c
}

func httpChecker(f func(*HTTPChecker)) *HTTPChecker {
	c := &HTTPChecker{
		Target:       tcpTarget(80),
		TLSVerify:    true,
		Method:       "GET",
		Request:      "/healthz",
		ResponseCode: 200,
	}
	f(c)
	return c
}

func dnsChecker(qtype uint16, answer string) *DNSChecker {
	return &DNSChecker{
		Target:   udpTarget(53),
		Question: Question{Name: "example.test", Qtype: qtype, Qclass: 1},
		Answer:   answer,
	}
}

// otherChecker is a Checker of none of Seesaw's types.
type otherChecker struct{ Target Target }

func (c *otherChecker) target() *Target { return &c.Target }

func TestToConfig(t *testing.T) {
	tests := []struct {
		name    string
		config  *Config
		want    messages.Config
		wantErr error  // ErrUnsupported or messages.ErrInvalidConfig
		errText string // in the error
	}{
		{
			name: "tcp",
			config: config(&TCPChecker{Target: tcpTarget(22), Receive: "SSH-",
				Send: "hi", Secure: true, TLSVerify: true}),
			want: want(messages.CheckerTCP, func(c *messages.Config) {
				c.Port, c.Receive, c.Send = 22, "SSH-", "hi"
				c.Secure, c.TLSVerify = true, true
			}),
		},
		{
			name:   "tcp drops TLSVerify without Secure",
			config: config(&TCPChecker{Target: tcpTarget(22), TLSVerify: true}),
			want:   want(messages.CheckerTCP, func(c *messages.Config) { c.Port = 22 }),
		},
		{
			name: "tcp 4-byte IPv4",
			config: config(&TCPChecker{Target: Target{
				IP: net.IPv4(192, 0, 2, 1).To4(), Port: 22, Proto: ProtoTCP,
			}}),
			want: want(messages.CheckerTCP, func(c *messages.Config) { c.Port = 22 }),
		},
		{
			name: "tcp IPv6",
			config: config(&TCPChecker{Target: Target{
				IP: net.ParseIP("2001:db8::1"), Port: 22, Proto: ProtoTCP,
			}}),
			want: want(messages.CheckerTCP, func(c *messages.Config) {
				c.IP, c.Port = netip.MustParseAddr("2001:db8::1"), 22
			}),
		},
		{
			name: "http",
			config: config(httpChecker(func(c *HTTPChecker) {
				c.Secure, c.Method, c.Response, c.ResponseCode = true, "HEAD", "ok", 204
			})),
			want: want(messages.CheckerHTTP, func(c *messages.Config) {
				c.Port, c.Secure, c.TLSVerify = 80, true, true
				c.Method, c.Path, c.Response = "HEAD", "/healthz", "ok"
				c.ExpectedCodes = []int{204}
			}),
		},
		{
			name: "http defaults and TLSVerify without Secure",
			config: config(httpChecker(func(c *HTTPChecker) {
				c.Method, c.Request = "", ""
			})),
			want: want(messages.CheckerHTTP, func(c *messages.Config) {
				c.Port, c.Method, c.Path, c.ExpectedCodes = 80, "GET", "/", []int{200}
			}),
		},
		{
			name: "http request target as Go's client sends it",
			config: config(httpChecker(func(c *HTTPChecker) {
				c.Request = "/a b?q=1#frag"
			})),
			want: want(messages.CheckerHTTP, func(c *messages.Config) {
				c.Port, c.Method, c.ExpectedCodes = 80, "GET", []int{200}
				c.Path = "/a%20b?q=1"
			}),
		},
		{
			name:   "dns A",
			config: config(dnsChecker(1, "192.0.2.53")),
			want: want(messages.CheckerDNS, func(c *messages.Config) {
				c.Port, c.Query, c.QueryType = 53, "example.test", "A"
				c.ExpectedIPs = []netip.Addr{netip.MustParseAddr("192.0.2.53")}
			}),
		},
		{
			name:   "dns A with a v4-mapped answer",
			config: config(dnsChecker(1, "::ffff:192.0.2.53")),
			want: want(messages.CheckerDNS, func(c *messages.Config) {
				c.Port, c.Query, c.QueryType = 53, "example.test", "A"
				c.ExpectedIPs = []netip.Addr{netip.MustParseAddr("192.0.2.53")}
			}),
		},
		{
			name:   "dns AAAA",
			config: config(dnsChecker(28, "2001:db8::53")),
			want: want(messages.CheckerDNS, func(c *messages.Config) {
				c.Port, c.Query, c.QueryType = 53, "example.test", "AAAA"
				c.ExpectedIPs = []netip.Addr{netip.MustParseAddr("2001:db8::53")}
			}),
		},

		{
			name: "ping",
			config: config(&PingChecker{Target: Target{IP: v4, Port: 7,
				Proto: ProtoICMP}, ID: 9}),
			want: want(messages.CheckerICMP, func(c *messages.Config) {}),
		},
		{
			name: "ping IPv6",
			config: config(&PingChecker{Target: Target{
				IP: net.ParseIP("2001:db8::1"), Proto: ProtoICMPv6,
			}}),
			want: want(messages.CheckerICMP, func(c *messages.Config) {
				c.IP = netip.MustParseAddr("2001:db8::1")
			}),
		},
		{
			name:   "udp",
			config: config(&UDPChecker{Target: udpTarget(9), Send: "x", Receive: "y"}),
			want: want(messages.CheckerUDP, func(c *messages.Config) {
				c.Port, c.Send, c.Receive = 9, "x", "y"
			}),
		},
		{
			name: "radius",
			config: config(&RADIUSChecker{Target: udpTarget(1812), Username: "u",
				Password: "p", Secret: "s", Response: "challenge"}),
			want: want(messages.CheckerRADIUS, func(c *messages.Config) {
				c.Port, c.Username, c.Password, c.Secret = 1812, "u", "p", "s"
				c.Response = messages.RADIUSChallenge
			}),
		},
		{
			name: "radius default response",
			config: config(&RADIUSChecker{Target: udpTarget(1812), Username: "u",
				Secret: "s"}),
			want: want(messages.CheckerRADIUS, func(c *messages.Config) {
				c.Port, c.Username, c.Secret = 1812, "u", "s"
				c.Response = messages.RADIUSAccept
			}),
		},
		{
			name:    "unknown checker type",
			config:  config(&otherChecker{Target: tcpTarget(1)}),
			wantErr: ErrUnsupported,
			errText: "Checker: checker type *bridge.otherChecker",
		},
		{
			name: "plain drops Host",
			config: config(&TCPChecker{Target: Target{IP: v4, Host: v4,
				Port: 22, Proto: ProtoTCP}}),
			want: want(messages.CheckerTCP, func(c *messages.Config) { c.Port = 22 }),
		},
		{
			name: "DSR",
			config: config(&TCPChecker{Target: Target{IP: v4,
				Host: net.ParseIP("10.0.0.2"), Mark: 65536, Mode: ModeDSR,
				Port: 22, Proto: ProtoTCP}}),
			want: want(messages.CheckerTCP, func(c *messages.Config) {
				c.Port, c.Mode, c.Mark = 22, messages.ModeDSR, 65536
				c.Backend = netip.MustParseAddr("10.0.0.2")
			}),
		},
		{
			name: "TUN without Host",
			config: config(&UDPChecker{Target: Target{IP: v4, Mark: 81535,
				Mode: ModeTUN, Port: 53, Proto: ProtoUDP}}),
			want: want(messages.CheckerUDP, func(c *messages.Config) {
				c.Port, c.Mode, c.Mark = 53, messages.ModeTUN, 81535
			}),
		},
		{
			name: "http proxy",
			config: config(httpChecker(func(c *HTTPChecker) {
				c.Proxy = true
			})),
			want: want(messages.CheckerHTTP, func(c *messages.Config) {
				c.Port, c.Method, c.Path, c.Proxy = 80, "GET", "/healthz", true
				c.ExpectedCodes = []int{200}
			}),
		},
		{
			name: "http absolute URL",
			config: config(httpChecker(func(c *HTTPChecker) {
				c.Request = "https://www.example.test:8080/healthz?a=1#x"
			})),
			want: want(messages.CheckerHTTP, func(c *messages.Config) {
				c.Port, c.Method, c.ExpectedCodes = 80, "GET", []int{200}
				c.Path, c.Host = "/healthz?a=1", "www.example.test:8080"
			}),
		},
		{
			name: "http URL without a scheme",
			config: config(httpChecker(func(c *HTTPChecker) {
				c.Request = "//example.test"
			})),
			want: want(messages.CheckerHTTP, func(c *messages.Config) {
				c.Port, c.Method, c.ExpectedCodes = 80, "GET", []int{200}
				c.Path, c.Host = "/", "example.test"
			}),
		},
		{
			name:   "dns MX",
			config: config(dnsChecker(15, "10 mx.example.test")),
			want: want(messages.CheckerDNS, func(c *messages.Config) {
				c.Port, c.Query, c.QueryType = 53, "example.test", "MX"
				c.ExpectedAnswers = []string{"10 mx.example.test"}
			}),
		},
		{
			name:   "dns CNAME",
			config: config(dnsChecker(5, "www.example.test.")),
			want: want(messages.CheckerDNS, func(c *messages.Config) {
				c.Port, c.Query, c.QueryType = 53, "example.test", "CNAME"
				c.ExpectedAnswers = []string{"www.example.test."}
			}),
		},
		{
			name:    "dns SRV",
			config:  config(dnsChecker(33, "x")),
			wantErr: ErrUnsupported,
			errText: "DNSChecker.Question.Qtype: type SRV",
		},
		{
			name:    "http any status code",
			config:  config(httpChecker(func(c *HTTPChecker) { c.ResponseCode = 0 })),
			wantErr: ErrUnsupported,
			errText: "HTTPChecker.ResponseCode: 0 (any status code)",
		},
		{
			name:    "dns unknown type",
			config:  config(dnsChecker(65280, "192.0.2.53")),
			wantErr: ErrUnsupported,
			errText: "DNSChecker.Question.Qtype: type TYPE65280",
		},
		{
			name: "dns class CH",
			config: with(dnsChecker(1, "192.0.2.53"), func(c *Config) {
				c.Checker.(*DNSChecker).Question.Qclass = 3
			}),
			wantErr: ErrUnsupported,
			errText: "DNSChecker.Question.Qclass: class CH",
		},

		// Invalid.
		{
			name:    "nil config",
			wantErr: messages.ErrInvalidConfig,
			errText: "Config: missing",
		},
		{
			name:    "nil checker",
			config:  config(nil),
			wantErr: messages.ErrInvalidConfig,
			errText: "Checker: missing",
		},
		{
			name:    "typed nil checker",
			config:  config((*TCPChecker)(nil)),
			wantErr: messages.ErrInvalidConfig,
			errText: "Checker: missing",
		},
		{
			name: "Id differs from its key",
			config: with(&TCPChecker{Target: tcpTarget(22)}, func(c *Config) {
				c.Id = 8
			}),
			wantErr: messages.ErrInvalidConfig,
			errText: "Id: 8 differs from its key 7",
		},
		{
			name: "zero interval",
			config: with(&TCPChecker{Target: tcpTarget(22)}, func(c *Config) {
				c.Interval = 0
			}),
			wantErr: messages.ErrInvalidConfig,
			errText: "Interval: must be positive, got 0s",
		},
		{
			name: "negative interval",
			config: with(&TCPChecker{Target: tcpTarget(22)}, func(c *Config) {
				c.Interval = -time.Second
			}),
			wantErr: messages.ErrInvalidConfig,
			errText: "Interval: must be positive, got -1s",
		},
		{
			name: "zero timeout",
			config: with(&TCPChecker{Target: tcpTarget(22)}, func(c *Config) {
				c.Timeout = 0
			}),
			wantErr: messages.ErrInvalidConfig,
			errText: "Timeout: must be positive, got 0s",
		},
		{
			name: "negative retries",
			config: with(&TCPChecker{Target: tcpTarget(22)}, func(c *Config) {
				c.Retries = -1
			}),
			wantErr: messages.ErrInvalidConfig,
			errText: "retries: must not be negative",
		},
		{
			name:    "port 0",
			config:  config(&TCPChecker{Target: tcpTarget(0)}),
			wantErr: messages.ErrInvalidConfig,
			errText: "port: must be within 1-65535, got 0",
		},
		{
			name:    "port too big",
			config:  config(&TCPChecker{Target: tcpTarget(1 << 16)}),
			wantErr: messages.ErrInvalidConfig,
			errText: "port: must be within 1-65535, got 65536",
		},
		{
			name:    "no IP",
			config:  config(&TCPChecker{Target: Target{Port: 22, Proto: ProtoTCP}}),
			wantErr: messages.ErrInvalidConfig,
			errText: "Target.IP: want 4 or 16 bytes, got 0",
		},
		{
			name: "5-byte IP",
			config: config(&TCPChecker{Target: Target{IP: net.IP{1, 2, 3, 4, 5},
				Port: 22, Proto: ProtoTCP}}),
			wantErr: messages.ErrInvalidConfig,
			errText: "Target.IP: want 4 or 16 bytes, got 5",
		},
		{
			name:    "tcp over UDP",
			config:  config(&TCPChecker{Target: udpTarget(22)}),
			wantErr: messages.ErrInvalidConfig,
			errText: "Target.Proto: want 6 for this checker, got 17",
		},
		{
			name: "dns over TCP",
			config: with(dnsChecker(1, "192.0.2.53"), func(c *Config) {
				c.Checker.(*DNSChecker).Target.Proto = ProtoTCP
			}),
			wantErr: messages.ErrInvalidConfig,
			errText: "Target.Proto: want 17 for this checker, got 6",
		},
		{
			name: "unknown mode",
			config: config(&TCPChecker{Target: Target{IP: v4, Mode: 3, Port: 22,
				Proto: ProtoTCP}}),
			wantErr: messages.ErrInvalidConfig,
			errText: "Target.Mode: unknown mode 3",
		},
		{
			name: "mark in plain mode",
			config: config(&TCPChecker{Target: Target{IP: v4, Mark: 65536,
				Port: 22, Proto: ProtoTCP}}),
			wantErr: messages.ErrInvalidConfig,
			errText: "mark: not used in plain mode",
		},
		{
			name: "DSR without a mark",
			config: config(&TCPChecker{Target: Target{IP: v4, Mode: ModeDSR,
				Port: 22, Proto: ProtoTCP}}),
			wantErr: messages.ErrInvalidConfig,
			errText: "mark: required in dsr mode",
		},
		{
			name: "DSR ping",
			config: config(&PingChecker{Target: Target{IP: v4, Mark: 65536,
				Mode: ModeDSR, Proto: ProtoICMP}}),
			wantErr: messages.ErrInvalidConfig,
			errText: "mode: checker icmp cannot run in dsr mode",
		},
		{
			name: "5-byte Host",
			config: config(&TCPChecker{Target: Target{IP: v4, Host: net.IP{1, 2, 3, 4, 5},
				Mark: 1, Mode: ModeTUN, Port: 22, Proto: ProtoTCP}}),
			wantErr: messages.ErrInvalidConfig,
			errText: "Target.Host: want 4 or 16 bytes, got 5",
		},
		{
			name:    "ping over ICMPv6 to IPv4",
			config:  config(&PingChecker{Target: Target{IP: v4, Proto: ProtoICMPv6}}),
			wantErr: messages.ErrInvalidConfig,
			errText: "Target.Proto: 58 does not match IP 192.0.2.1",
		},
		{
			name:    "ping over TCP",
			config:  config(&PingChecker{Target: Target{IP: v4, Proto: ProtoTCP}}),
			wantErr: messages.ErrInvalidConfig,
			errText: "Target.Proto: want 1 for this checker, got 6",
		},
		{
			name:    "radius without a secret",
			config:  config(&RADIUSChecker{Target: udpTarget(1812), Username: "u"}),
			wantErr: messages.ErrInvalidConfig,
			errText: "secret: missing",
		},
		{
			name: "http URL without a host",
			config: config(httpChecker(func(c *HTTPChecker) {
				c.Request = "http:/healthz"
			})),
			wantErr: messages.ErrInvalidConfig,
			errText: `HTTPChecker.Request: URL "http:/healthz" has no host`,
		},
		{
			name:    "dns MX answer without preference",
			config:  config(dnsChecker(15, "mx.example.test")),
			wantErr: messages.ErrInvalidConfig,
			errText: "expected_answers: MX answer",
		},
		{
			name:    "http invalid method",
			config:  config(httpChecker(func(c *HTTPChecker) { c.Method = "GE T" })),
			wantErr: messages.ErrInvalidConfig,
			errText: `method: invalid HTTP method "GE T"`,
		},
		{
			name:    "http relative path",
			config:  config(httpChecker(func(c *HTTPChecker) { c.Request = "healthz" })),
			wantErr: messages.ErrInvalidConfig,
			errText: "path: must start with '/'",
		},
		{
			name:    "http unparsable request",
			config:  config(httpChecker(func(c *HTTPChecker) { c.Request = "/%zz" })),
			wantErr: messages.ErrInvalidConfig,
			errText: "HTTPChecker.Request: parse",
		},
		{
			name:    "http bad status code",
			config:  config(httpChecker(func(c *HTTPChecker) { c.ResponseCode = 42 })),
			wantErr: messages.ErrInvalidConfig,
			errText: "expected_codes: 42 is not an HTTP status code",
		},
		{
			name:    "dns without an answer",
			config:  config(dnsChecker(1, "")),
			wantErr: messages.ErrInvalidConfig,
			errText: "DNSChecker.Answer: missing",
		},
		{
			name:    "dns answer not an address",
			config:  config(dnsChecker(1, "example.test")),
			wantErr: messages.ErrInvalidConfig,
			errText: `DNSChecker.Answer: "example.test" is not an IP address`,
		},
		{
			name:    "dns answer with a zone",
			config:  config(dnsChecker(28, "fe80::1%eth0")),
			wantErr: messages.ErrInvalidConfig,
			errText: "is not an IP address",
		},
		{
			name:    "dns A with an IPv6 answer",
			config:  config(dnsChecker(1, "2001:db8::53")),
			wantErr: messages.ErrInvalidConfig,
			errText: "expected_ips: 2001:db8::53 cannot answer a A query",
		},
		{
			name: "dns without a name",
			config: with(dnsChecker(1, "192.0.2.53"), func(c *Config) {
				c.Checker.(*DNSChecker).Question.Name = ""
			}),
			wantErr: messages.ErrInvalidConfig,
			errText: "query: missing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ToConfig(7, tt.config)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ToConfig: got error %v, want none", err)
				}
				if diff := cmp.Diff(tt.want, got, addrs); diff != "" {
					t.Errorf("ToConfig mismatch (-want +got):\n%s", diff)
				}
				if got.IP.Is4In6() {
					t.Errorf("IP: got %v, want a plain IPv4 address", got.IP)
				}
				return
			}
			checkConfigError(t, err, tt.wantErr, tt.errText)
			if diff := cmp.Diff(messages.Config{}, got, addrs); diff != "" {
				t.Errorf("config of an error: got %+v, want the zero config", got)
			}
		})
	}
}

// checkConfigError checks that err is a ToConfig error of kind wantErr
// (ErrUnsupported or only messages.ErrInvalidConfig) that contains text.
func checkConfigError(t *testing.T, err, wantErr error, text string) {
	t.Helper()
	if !errors.Is(err, messages.ErrInvalidConfig) {
		t.Errorf("error %v: does not wrap messages.ErrInvalidConfig", err)
	}
	got, want := errors.Is(err, ErrUnsupported), wantErr == ErrUnsupported
	if got != want {
		t.Errorf("error %v: errors.Is(err, ErrUnsupported) = %v, want %v",
			err, got, want)
	}
	if err == nil || !strings.Contains(err.Error(), text) {
		t.Errorf("error: got %v, want it to contain %q", err, text)
	}
}

// TestToConfigGolden converts the 19 configs Seesaw sent: every one
// converts.
func TestToConfigGolden(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	base := func(id uint64, checker messages.CheckerType, port int) messages.Config {
		return messages.Config{ID: id, Interval: time.Second, Timeout: time.Second,
			Checker: checker, IP: lo, Port: port}
	}
	tcp := func(id uint64, port int, f func(*messages.Config)) messages.Config {
		c := base(id, messages.CheckerTCP, port)
		f(&c)
		return c
	}
	http := func(id uint64, port int, path, response string) messages.Config {
		c := base(id, messages.CheckerHTTP, port)
		c.Method, c.Path, c.Response, c.ExpectedCodes = "GET", path, response, []int{200}
		return c
	}
	proxy := func(c messages.Config) messages.Config {
		c.Proxy = true
		return c
	}
	tests := []struct {
		id      uint64
		want    messages.Config
		errText string // set when the config must be rejected as unsupported
	}{
		{id: goldenID + 0, want: tcp(goldenID+0, 42099, func(*messages.Config) {})},
		{id: goldenID + 1, want: tcp(goldenID+1, 42341, func(c *messages.Config) {
			c.Receive, c.Send = "PING", "PING\r\n"
		})},
		{id: goldenID + 2, want: tcp(goldenID+2, 42341, func(c *messages.Config) {
			c.Receive, c.Send = "abd", "abc"
		})},
		{id: goldenID + 3, want: tcp(goldenID+3, 42099, func(c *messages.Config) {
			c.Mode, c.Mark, c.Backend = messages.ModeDSR, 65536, lo
		})},
		{id: goldenID + 4, want: tcp(goldenID+4, 40429, func(c *messages.Config) {
			c.Receive, c.Send, c.Secure = "hello", "hello", true
		})},
		{id: goldenID + 5, want: tcp(goldenID+5, 40429, func(c *messages.Config) {
			c.Secure, c.TLSVerify = true, true
		})},
		{id: goldenID + 6, want: http(goldenID+6, 37771, "/healthz",
			"ok host=127.0.0.1:")},
		{id: goldenID + 7, want: proxy(http(goldenID+7, 37771, "/healthz",
			"ok host=127.0.0.1:37771 uri=http://127.0.0.1:37771/healthz"))},
		{id: goldenID + 8, want: func() messages.Config {
			c := http(goldenID+8, 37771, "/healthz",
				"ok host=www.example.test uri=/healthz")
			c.Mode, c.Mark, c.Host = messages.ModeDSR, 65537, "www.example.test"
			return c
		}()},
		{id: goldenID + 9, want: http(goldenID+9, 37771, "/healthz",
			"ok host=127.0.0.1:37771 uri=/healthz")},
		{id: goldenID + 10, want: func() messages.Config {
			c := http(goldenID+10, 35721, "/healthz", "ok")
			c.Host = "127.0.0.1:37771"
			return c
		}()},
		{id: goldenID + 11, want: func() messages.Config {
			c := proxy(http(goldenID+11, 35721, "/healthz",
				"ok host=127.0.0.1:37771 uri=http://127.0.0.1:37771/healthz"))
			c.Host = "127.0.0.1:37771"
			return c
		}()},
		{id: goldenID + 12, want: http(goldenID+12, 37771, "/nope", "")},
		{id: goldenID + 13, want: func() messages.Config {
			c := http(goldenID+13, 36817, "/healthz", "")
			c.Method, c.Secure = "HEAD", true
			return c
		}()},
		{id: goldenID + 14, want: func() messages.Config {
			c := base(goldenID+14, messages.CheckerUDP, 33628)
			c.Receive, c.Send = "pi", "ping"
			return c
		}()},
		{id: goldenID + 15, want: func() messages.Config {
			c := base(goldenID+15, messages.CheckerDNS, 40941)
			c.Query, c.QueryType = "example.test", "A"
			c.ExpectedIPs = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
			return c
		}()},
		{id: goldenID + 16, want: func() messages.Config {
			c := base(goldenID+16, messages.CheckerRADIUS, 52959)
			c.Username, c.Password, c.Secret = "user", "pass", "s3cret"
			c.Response = messages.RADIUSAccept
			return c
		}()},
		{id: goldenID + 17, want: base(goldenID+17, messages.CheckerICMP, 0)},
		{id: goldenID + 18, want: func() messages.Config {
			c := base(goldenID+18, messages.CheckerICMP, 0)
			c.IP = netip.IPv6Loopback()
			return c
		}()},
	}

	checks := decodeGoldenChecks(t, goldenHealthchecksReply)
	if got, want := len(checks.Configs), len(tests); got != want {
		t.Fatalf("configs: got %d, want %d", got, want)
	}
	for _, tt := range tests {
		t.Run(strconv.FormatUint(tt.id, 10), func(t *testing.T) {
			got, err := ToConfig(tt.id, checks.Configs[tt.id])
			if tt.errText != "" {
				checkConfigError(t, err, ErrUnsupported, tt.errText)
				return
			}
			if err != nil {
				t.Fatalf("ToConfig: got error %v, want none", err)
			}
			if diff := cmp.Diff(tt.want, got, addrs); diff != "" {
				t.Errorf("ToConfig mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// decodeGoldenChecks decodes the Checks of a captured Healthchecks reply.
func decodeGoldenChecks(tb testing.TB, name string) *Checks {
	tb.Helper()
	dec := gob.NewDecoder(bytes.NewReader(readTestdata(tb, name)))
	var checks Checks
	if err := dec.Decode(&rpc.Response{}); err != nil {
		tb.Fatal(err)
	}
	if err := dec.Decode(&checks); err != nil {
		tb.Fatal(err)
	}
	return &checks
}

// TestToConfigsGolden writes what ToConfigs makes of the 19 captured
// configs as JSON, and compares it with testdata/healthchecks-reply.json;
// -update rewrites that file.
func TestToConfigsGolden(t *testing.T) {
	configs, rejected := ToConfigs(decodeGoldenChecks(t, goldenHealthchecksReply))
	out := struct {
		Configs  []messages.Config `json:"configs"`
		Rejected map[uint64]string `json:"rejected"`
	}{Configs: configs, Rejected: make(map[uint64]string)}
	for id, err := range rejected {
		out.Rejected[id] = err.Error()
	}
	got, err := json.MarshalIndent(out, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')

	path := filepath.Join("testdata", "healthchecks-reply.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("ToConfigs mismatch with %s (-want +got):\n%s", path, diff)
	}
}

// TestToConfigs1000 converts the capture of 1,000 plain TCP checks.
func TestToConfigs1000(t *testing.T) {
	configs, rejected := ToConfigs(decodeGoldenChecks(t, golden1000TCP))
	if len(configs) != 1000 || len(rejected) != 0 {
		t.Fatalf("ToConfigs: got %d configs and %d rejected, want 1000 and 0",
			len(configs), len(rejected))
	}
	for i, c := range configs {
		want := messages.Config{
			ID:       4809844402031689728 + uint64(i),
			Interval: time.Second,
			Timeout:  time.Second,
			Checker:  messages.CheckerTCP,
			IP:       netip.MustParseAddr("127.0.0.1"),
			Port:     46069,
		}
		if diff := cmp.Diff(want, c, addrs); diff != "" {
			t.Fatalf("configs[%d] mismatch (-want +got):\n%s", i, diff)
		}
	}
}

func TestToConfigs(t *testing.T) {
	ok := func(id uint64) *Config {
		c := config(&TCPChecker{Target: tcpTarget(int(id))})
		c.Id = id
		return c
	}
	bad := func(id uint64) *Config {
		c := config(&UDPChecker{Target: tcpTarget(int(id))})
		c.Id = id
		return c
	}
	tests := []struct {
		name         string
		checks       *Checks
		wantIDs      []uint64
		wantRejected []uint64
	}{
		{name: "nil checks"},
		{name: "nil configs", checks: &Checks{}},
		{
			name: "ascending order",
			checks: &Checks{Configs: map[uint64]*Config{
				30: ok(30), 10: ok(10), 20: bad(20), 40: ok(40), 1: ok(1),
			}},
			wantIDs:      []uint64{1, 10, 30, 40},
			wantRejected: []uint64{20},
		},
		{
			name:         "nil config",
			checks:       &Checks{Configs: map[uint64]*Config{5: nil, 6: ok(6)}},
			wantIDs:      []uint64{6},
			wantRejected: []uint64{5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			configs, rejected := ToConfigs(tt.checks)
			var gotIDs, gotRejected []uint64
			for _, c := range configs {
				gotIDs = append(gotIDs, c.ID)
			}
			for id, err := range rejected {
				gotRejected = append(gotRejected, id)
				if !errors.Is(err, messages.ErrInvalidConfig) {
					t.Errorf("rejected[%d] = %v: does not wrap ErrInvalidConfig", id, err)
				}
			}
			if diff := cmp.Diff(tt.wantIDs, gotIDs); diff != "" {
				t.Errorf("config IDs mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRejected, gotRejected); diff != "" {
				t.Errorf("rejected IDs mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFromStatus(t *testing.T) {
	now := time.Now() // with a monotonic reading
	zone := time.FixedZone("odd", 5*3600+30*60+17)
	tests := []struct {
		name string
		in   messages.CheckStatus
		want *Notification
	}{
		{
			name: "never checked",
			in:   messages.CheckStatus{ID: 1},
			want: &Notification{Id: 1},
		},
		{
			name: "healthy",
			in: messages.CheckStatus{ID: 1 << 63, Status: messages.Status{
				State:     messages.StateHealthy,
				Message:   "ok",
				LastCheck: now,
				Duration:  time.Millisecond,
				Successes: 5,
				Failures:  2,
				Restarts:  9,
			}},
			want: &Notification{Id: 1 << 63, Status: Status{
				LastCheck: now,
				Duration:  time.Millisecond,
				Failures:  2,
				Successes: 5,
				State:     2,
				Message:   "ok",
			}},
		},
		{
			name: "unhealthy in an odd zone",
			in: messages.CheckStatus{ID: 2, Status: messages.Status{
				State:     messages.StateUnhealthy,
				LastCheck: time.Date(2026, 1, 2, 3, 4, 5, 6, zone),
			}},
			want: &Notification{Id: 2, Status: Status{
				LastCheck: time.Date(2026, 1, 2, 3, 4, 5, 6, zone),
				State:     1,
			}},
		},
		{
			name: "unknown",
			in: messages.CheckStatus{ID: 3, Status: messages.Status{
				State: messages.StateUnknown,
			}},
			want: &Notification{Id: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromStatus(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FromStatus mismatch (-want +got):\n%s", diff)
			}
			lc := got.Status.LastCheck
			if lc.Location() != time.UTC || lc != lc.Round(0) {
				t.Errorf("LastCheck %v: want UTC without a monotonic reading", lc)
			}
		})
	}
}
