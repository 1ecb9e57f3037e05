package messages

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// largestMark is the largest mark a Config holds on this target: MaxMark,
// but only up to math.MaxInt on 32-bit targets, where Mark is 32 bits.
const largestMark = min(MaxMark, math.MaxInt)

// markPast32Error is the error of a mark past 32 bits: the range
// check's, or, where an int has 32 bits, the JSON decoder's.
func markPast32Error() string {
	if strconv.IntSize == 32 {
		return "mark: cannot use JSON number 4294967296 as int"
	}
	return "mark: must be within 1-4294967295"
}

// fullICMP, fullUDP, fullRADIUS, fullDSR and fullMX set every field their
// checker or mode uses, with defaults applied, as fullTCP does.
func fullICMP() Config {
	return Config{
		ID:       4,
		Interval: time.Second,
		Timeout:  time.Second,
		Checker:  CheckerICMP,
		IP:       netip.MustParseAddr("2001:db8::4"),
	}
}

func fullUDP() Config {
	return Config{
		ID:       5,
		Interval: time.Second,
		Timeout:  time.Second,
		Checker:  CheckerUDP,
		IP:       netip.MustParseAddr("10.0.0.5"),
		Port:     9,
		Send:     "ping",
		Receive:  "pong",
	}
}

func fullRADIUS() Config {
	return Config{
		ID:       6,
		Interval: time.Second,
		Timeout:  time.Second,
		Checker:  CheckerRADIUS,
		IP:       netip.MustParseAddr("10.0.0.6"),
		Port:     1812,
		Username: "probe",
		Password: "pa:ss",
		Secret:   "s3cret",
		Response: RADIUSReject,
	}
}

func fullDSR() Config {
	c := fullHTTP()
	c.ID = 7
	c.Mode, c.Mark = ModeDSR, 65536
	c.Backend = netip.MustParseAddr("2001:db8::77")
	c.Proxy = true
	return c
}

func fullMX() Config {
	return Config{
		ID:              8,
		Interval:        time.Second,
		Timeout:         time.Second,
		Checker:         CheckerDNS,
		IP:              netip.MustParseAddr("10.0.0.53"),
		Port:            53,
		Mode:            ModeTUN,
		Mark:            largestMark,
		Query:           "example.com",
		QueryType:       "MX",
		ExpectedAnswers: []string{"10 mx1.example.com", "20 MX2.example.com."},
	}
}

// fullConfigs returns one full config of every checker and mode.
func fullConfigs() []Config {
	return []Config{
		fullTCP(), fullHTTP(), fullDNS(), fullICMP(), fullUDP(), fullRADIUS(),
		fullDSR(), fullMX(),
	}
}

var (
	icmpBase = map[string]any{
		"id": 40, "checker_type": "icmp", "ip": "10.0.0.4",
	}
	udpBase = map[string]any{
		"id": 50, "checker_type": "udp", "ip": "10.0.0.5", "port": 9,
	}
	radiusBase = map[string]any{
		"id": 60, "checker_type": "radius", "ip": "10.0.0.6", "port": 1812,
		"username": "u", "secret": "s",
	}
	dsrBase = map[string]any{
		"id": 70, "checker_type": "tcp", "ip": "192.0.2.80", "port": 80,
		"mode": "dsr", "mark": 65536,
	}
)

func TestParseConfigModesAndCheckers(t *testing.T) {
	tests := []struct {
		name string
		raw  json.RawMessage
		want func() Config
	}{
		{
			name: "icmp",
			raw:  patch(t, icmpBase),
			want: func() Config {
				c := fullICMP()
				c.ID, c.IP = 40, netip.MustParseAddr("10.0.0.4")
				c.Interval, c.Timeout = DefaultInterval, DefaultTimeout
				return c
			},
		},
		{
			name: "icmp port 0",
			raw:  patch(t, icmpBase, "port", 0, "mode", "plain"),
			want: func() Config {
				c := fullICMP()
				c.ID, c.IP = 40, netip.MustParseAddr("10.0.0.4")
				c.Interval, c.Timeout = DefaultInterval, DefaultTimeout
				return c
			},
		},
		{
			name: "udp without payloads",
			raw:  patch(t, udpBase),
			want: func() Config {
				c := fullUDP()
				c.ID, c.Send, c.Receive = 50, "", ""
				c.Interval, c.Timeout = DefaultInterval, DefaultTimeout
				return c
			},
		},
		{
			name: "radius defaults to accept",
			raw:  patch(t, radiusBase),
			want: func() Config {
				c := fullRADIUS()
				c.ID, c.Username, c.Password, c.Secret = 60, "u", "", "s"
				c.Response = RADIUSAccept
				c.Interval, c.Timeout = DefaultInterval, DefaultTimeout
				return c
			},
		},
		{
			name: "dsr with backend",
			raw:  patch(t, dsrBase, "backend", "10.1.1.1", "mark", largestMark),
			want: func() Config {
				return Config{ID: 70, Interval: DefaultInterval,
					Timeout: DefaultTimeout, Checker: CheckerTCP,
					IP: netip.MustParseAddr("192.0.2.80"), Port: 80,
					Mode: ModeDSR, Mark: largestMark,
					Backend: netip.MustParseAddr("10.1.1.1")}
			},
		},
		{
			name: "tun udp",
			raw:  patch(t, udpBase, "mode", "tun", "mark", 1),
			want: func() Config {
				c := fullUDP()
				c.ID, c.Send, c.Receive = 50, "", ""
				c.Mode, c.Mark = ModeTUN, 1
				c.Interval, c.Timeout = DefaultInterval, DefaultTimeout
				return c
			},
		},
		{
			name: "dns SOA",
			raw: patch(t, dnsBase, "query_type", "soa",
				"expected_answers", []string{"ns1.example.com hostmaster.example.com 7"}),
			want: func() Config {
				return Config{ID: 30, Interval: DefaultInterval,
					Timeout: DefaultTimeout, Checker: CheckerDNS,
					IP: netip.MustParseAddr("10.0.0.53"), Port: 53,
					Query: "www.example.com", QueryType: "SOA",
					ExpectedAnswers: []string{
						"ns1.example.com hostmaster.example.com 7",
					}}
			},
		},
		{
			name: "tcp secure with host",
			raw:  patch(t, tcpBase, "secure", true, "host", "www.example.com"),
			want: func() Config {
				return Config{ID: 10, Interval: DefaultInterval,
					Timeout: DefaultTimeout, Checker: CheckerTCP,
					IP: netip.MustParseAddr("192.168.1.100"), Port: 8080,
					Secure: true, Host: "www.example.com"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig(tt.raw)
			if err != nil {
				t.Fatalf("ParseConfig(%s) error: %v", tt.raw, err)
			}
			if diff := cmp.Diff(tt.want(), got, cmpAddr); diff != "" {
				t.Errorf("ParseConfig(%s) mismatch (-want +got):\n%s", tt.raw, diff)
			}
		})
	}
}

var modeErrorTests = []configErrorTest{
	{
		name: "icmp with a port",
		base: icmpBase, kv: []any{"port", 7},
		field: "port: not used by checker icmp", id: 40, hasID: true,
	},
	{
		name: "udp without a port",
		base: udpBase, kv: []any{"port", absent},
		field: "port: must be within 1-65535", id: 50, hasID: true,
	},
	{
		name: "icmp in dsr mode",
		base: icmpBase, kv: []any{"mode", "dsr", "mark", 65536},
		field: "mode: checker icmp cannot run in dsr mode", id: 40, hasID: true,
	},
	{
		name: "icmp in tun mode",
		base: icmpBase, kv: []any{"mode", "tun", "mark", 65536},
		field: "mode: checker icmp cannot run in tun mode", id: 40, hasID: true,
	},
	{
		name: "icmp with send",
		base: icmpBase, kv: []any{"send", "x"},
		field: "send: not used by checker icmp", id: 40, hasID: true,
	},
	{
		name: "unknown mode",
		base: tcpBase, kv: []any{"mode", "DSR"},
		field: "mode: unknown mode", id: 10, hasID: true,
	},
	{
		name: "dsr without a mark",
		base: dsrBase, kv: []any{"mark", absent},
		field: "mark: required in dsr mode", id: 70, hasID: true,
	},
	{
		name: "tun with mark 0",
		base: dsrBase, kv: []any{"mode", "tun", "mark", 0},
		field: "mark: required in tun mode", id: 70, hasID: true,
	},
	{
		name: "negative mark",
		base: dsrBase, kv: []any{"mark", -1},
		field: "mark: must be within 1-4294967295", id: 70, hasID: true,
	},
	{
		name: "mark past 32 bits",
		base: dsrBase, kv: []any{"mark", int64(4294967296)},
		field: markPast32Error(), id: 70, hasID: true,
	},
	{
		name: "mark in plain mode",
		base: tcpBase, kv: []any{"mark", 65536},
		field: "mark: not used in plain mode", id: 10, hasID: true,
	},
	{
		name: "backend in plain mode",
		base: tcpBase, kv: []any{"backend", "10.0.0.1"},
		field: "backend: not used in plain mode", id: 10, hasID: true,
	},
	{
		name: "backend unparsable",
		base: dsrBase, kv: []any{"backend", "backend.example"},
		field: "backend:", id: 70, hasID: true,
	},
	{
		name: "backend with zone",
		base: dsrBase, kv: []any{"backend", "fe80::1%eth0"},
		field: "backend: zones are not supported", id: 70, hasID: true,
	},
	{
		name: "mark as a string",
		base: dsrBase, kv: []any{"mark", "65536"},
		field: "mark:", id: 70, hasID: true,
	},
	{
		name: "tcp host without secure",
		base: tcpBase, kv: []any{"host", "www.example.com"},
		field: "host: only used by tcp with secure", id: 10, hasID: true,
	},
	{
		name: "tcp with proxy",
		base: tcpBase, kv: []any{"proxy", true},
		field: "proxy: not used by checker tcp", id: 10, hasID: true,
	},
	{
		name: "udp with secure",
		base: udpBase, kv: []any{"secure", true},
		field: "secure: not used by checker udp", id: 50, hasID: true,
	},
	{
		name: "udp with username",
		base: udpBase, kv: []any{"username", "u"},
		field: "username: not used by checker udp", id: 50, hasID: true,
	},
	{
		name: "radius without username",
		base: radiusBase, kv: []any{"username", absent},
		field: "username: missing", id: 60, hasID: true,
	},
	{
		name: "radius without secret",
		base: radiusBase, kv: []any{"secret", ""},
		field: "secret: missing", id: 60, hasID: true,
	},
	{
		name: "radius unknown response",
		base: radiusBase, kv: []any{"response", "Accept"},
		field: "response: unknown RADIUS response", id: 60, hasID: true,
	},
	{
		name: "radius password too long",
		base: radiusBase, kv: []any{"password", strings.Repeat("p", 129)},
		field: "password: longer than 128 bytes", id: 60, hasID: true,
	},
	{
		name: "radius with send",
		base: radiusBase, kv: []any{"send", "x"},
		field: "send: not used by checker radius", id: 60, hasID: true,
	},
	{
		name: "http with secret",
		base: httpBase, kv: []any{"secret", "x"},
		field: "secret: not used by checker http", id: 20, hasID: true,
	},
	{
		name: "dns MX with expected_ips",
		base: dnsBase, kv: []any{"query_type", "MX",
			"expected_ips", []string{"10.0.0.1"}},
		field: "expected_ips: not used by query_type MX", id: 30, hasID: true,
	},
	{
		name: "dns A with expected_answers",
		base: dnsBase, kv: []any{"expected_answers", []string{"10.0.0.1"}},
		field: "expected_answers: not used by query_type A", id: 30, hasID: true,
	},
	{
		name: "dns CNAME answer not a name",
		base: dnsBase, kv: []any{"query_type", "CNAME",
			"expected_answers", []string{"a b"}},
		field: "expected_answers:", id: 30, hasID: true,
	},
	{
		name: "dns MX answer without preference",
		base: dnsBase, kv: []any{"query_type", "MX",
			"expected_answers", []string{"mx.example.com"}},
		field: "expected_answers: MX answer", id: 30, hasID: true,
	},
	{
		name: "dns SOA answer with a bad serial",
		base: dnsBase, kv: []any{"query_type", "SOA",
			"expected_answers", []string{"ns. mbox. x"}},
		field: "expected_answers: SOA answer", id: 30, hasID: true,
	},
	{
		name: "tcp with expected_answers",
		base: tcpBase, kv: []any{"expected_answers", []string{"a"}},
		field: "expected_answers: not used by checker tcp", id: 10, hasID: true,
	},
	{
		name: "expected_answers not a list",
		base: dnsBase, kv: []any{"query_type", "TXT", "expected_answers", "a"},
		field: "expected_answers:", id: 30, hasID: true,
	},
}

func TestParseConfigRejectsModes(t *testing.T) {
	for _, tt := range modeErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.config(t)
			got, err := ParseConfig(raw)
			if err == nil {
				t.Fatalf("ParseConfig(%s) = %v, want an error", raw, &got)
			}
			checkConfigError(t, &ConfigError{Err: err, ID: tt.id,
				HasID: tt.hasID}, 0, tt.id, tt.hasID, tt.field)
		})
	}
}

func TestNormalizeAnswer(t *testing.T) {
	tests := []struct {
		qtype, in, want string
	}{
		{"CNAME", "WWW.Example.COM", "www.example.com."},
		{"NS", "ns1.example.com.", "ns1.example.com."},
		{"PTR", ".", "."},
		{"MX", " 010   Mail.Example.com ", "10 mail.example.com."},
		{"MX", "0 .", "0 ."},
		{"TXT", " v=spf1 -all", " v=spf1 -all"},
		{"SOA", "NS1.example.com", "ns1.example.com."},
		{"SOA", "ns1.example.com. Host.example.com 07 3600 600 86400 300",
			"ns1.example.com. host.example.com. 7 3600 600 86400 300"},
	}
	for _, tt := range tests {
		got, err := NormalizeAnswer(tt.qtype, tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeAnswer(%s, %q) = %q, %v; want %q",
				tt.qtype, tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []struct{ qtype, in string }{
		{"A", "10.0.0.1"},
		{"CNAME", ""},
		{"CNAME", "a..b"},
		{"MX", "65536 mx.example.com"},
		{"MX", "10"},
		{"SOA", ""},
		{"SOA", "a. b. 1 2 3 4 5 6"},
		{"SOA", "a. b. 4294967296"},
	} {
		if got, err := NormalizeAnswer(bad.qtype, bad.in); err == nil {
			t.Errorf("NormalizeAnswer(%s, %q) = %q, want an error",
				bad.qtype, bad.in, got)
		}
	}
}

func TestConfigSameProbeNewFields(t *testing.T) {
	tests := []struct {
		name   string
		base   func() Config
		change func(c *Config)
	}{
		{"mode", fullDSR, func(c *Config) { c.Mode = ModeTUN }},
		{"mark", fullDSR, func(c *Config) { c.Mark++ }},
		{"backend", fullDSR, func(c *Config) { c.Backend = netip.Addr{} }},
		{"proxy", fullDSR, func(c *Config) { c.Proxy = false }},
		{"username", fullRADIUS, func(c *Config) { c.Username = "x" }},
		{"password", fullRADIUS, func(c *Config) { c.Password = "x" }},
		{"secret", fullRADIUS, func(c *Config) { c.Secret = "x" }},
		{"radius response", fullRADIUS, func(c *Config) { c.Response = RADIUSAny }},
		{"udp send", fullUDP, func(c *Config) { c.Send = "x" }},
		{"expected answer changed", fullMX, func(c *Config) {
			c.ExpectedAnswers = []string{"10 mx1.example.com", "30 mx3.example.com"}
		}},
		{"expected answer removed", fullMX, func(c *Config) {
			c.ExpectedAnswers = c.ExpectedAnswers[:1]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.base(), tt.base()
			tt.change(&b)
			if a.SameProbe(&b) || b.SameProbe(&a) || a.Equal(&b) {
				t.Errorf("SameProbe or Equal true after changing %s", tt.name)
			}
			b = tt.base()
			b.Interval, b.Retries = time.Hour, 9
			if !a.SameProbe(&b) || a.Equal(&b) {
				t.Errorf("after changing interval: SameProbe = %t, Equal = %t;"+
					" want true, false", a.SameProbe(&b), a.Equal(&b))
			}
		})
	}
	a, b := fullMX(), fullMX()
	a.ExpectedAnswers, b.ExpectedAnswers = nil, []string{}
	if !a.Equal(&b) {
		t.Errorf("Equal with nil and empty expected_answers = false, want true")
	}
}

func TestConfigMarshalJSONModes(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{
			name: "icmp",
			cfg:  fullICMP(),
			want: `{"id":4,"interval":"1s","timeout":"1s","checker_type":"icmp",` +
				`"ip":"2001:db8::4","port":0}`,
		},
		{
			name: "radius",
			cfg:  fullRADIUS(),
			want: `{"id":6,"interval":"1s","timeout":"1s","checker_type":"radius",` +
				`"ip":"10.0.0.6","port":1812,"response":"reject",` +
				`"username":"probe","password":"pa:ss","secret":"s3cret"}`,
		},
		{
			name: "dns tun",
			cfg:  fullMX(),
			want: `{"id":8,"interval":"1s","timeout":"1s","checker_type":"dns",` +
				`"ip":"10.0.0.53","port":53,"mode":"tun",` +
				fmt.Sprintf(`"mark":%d,`, largestMark) +
				`"query":"example.com","query_type":"MX",` +
				`"expected_answers":["10 mx1.example.com","20 MX2.example.com."]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.cfg)
			if err != nil {
				t.Fatalf("json.Marshal error: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("json.Marshal(config)\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestConfigTargetAndStringModes(t *testing.T) {
	tests := []struct {
		cfg                    Config
		wantTarget, wantString string
	}{
		{fullICMP(), "2001:db8::4", "icmp 2001:db8::4"},
		{fullDSR(), "[2001:db8::1]:443",
			"http HEAD /healthz?full=1 [2001:db8::1]:443 dsr " +
				"(via 2001:db8::77 mark 65536)"},
		{fullMX(), "10.0.0.53:53",
			fmt.Sprintf("dns example.com MX 10.0.0.53:53 tun (mark %d)",
				largestMark)},
	}
	for _, tt := range tests {
		if got := tt.cfg.Target(); got != tt.wantTarget {
			t.Errorf("Target() = %q, want %q", got, tt.wantTarget)
		}
		if got := tt.cfg.String(); got != tt.wantString {
			t.Errorf("String() = %q, want %q", got, tt.wantString)
		}
	}
	if got := ModePlain.String(); got != "plain" {
		t.Errorf("ModePlain.String() = %q, want plain", got)
	}
}
