package messages

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Config
	}{
		{
			name: "example from the protocol",
			raw: `{"id":123,"interval":"5s","timeout":"30s","retries":2,` +
				`"checker_type":"tcp","ip":"192.168.1.100","port":8080}`,
			want: Config{
				ID:       123,
				Interval: 5 * time.Second,
				Timeout:  30 * time.Second,
				Retries:  2,
				Checker:  CheckerTCP,
				IP:       netip.MustParseAddr("192.168.1.100"),
				Port:     8080,
			},
		},
		{
			name: "tcp",
			raw:  `{"id":1,"checker_type":"tcp","ip":"10.0.0.1","port":22}`,
			want: Config{
				ID:       1,
				Interval: DefaultInterval,
				Timeout:  DefaultTimeout,
				Checker:  CheckerTCP,
				IP:       netip.MustParseAddr("10.0.0.1"),
				Port:     22,
			},
		},
		{
			name: "http",
			raw:  `{"id":2,"checker_type":"http","ip":"2001:db8::1","port":80}`,
			want: Config{
				ID:            2,
				Interval:      5 * time.Second,
				Timeout:       30 * time.Second,
				Checker:       CheckerHTTP,
				IP:            netip.MustParseAddr("2001:db8::1"),
				Port:          80,
				Method:        "GET",
				Path:          "/",
				ExpectedCodes: []int{200},
			},
		},
		{
			name: "http empty expected_codes",
			raw: `{"id":2,"checker_type":"http","ip":"10.0.0.1","port":80,` +
				`"method":"","path":"","expected_codes":[]}`,
			want: Config{
				ID:            2,
				Interval:      5 * time.Second,
				Timeout:       30 * time.Second,
				Checker:       CheckerHTTP,
				IP:            netip.MustParseAddr("10.0.0.1"),
				Port:          80,
				Method:        "GET",
				Path:          "/",
				ExpectedCodes: []int{200},
			},
		},
		{
			name: "dns",
			raw: `{"id":3,"checker_type":"dns","ip":"10.0.0.53","port":53,` +
				`"query":"example.com"}`,
			want: Config{
				ID:        3,
				Interval:  5 * time.Second,
				Timeout:   30 * time.Second,
				Checker:   CheckerDNS,
				IP:        netip.MustParseAddr("10.0.0.53"),
				Port:      53,
				Query:     "example.com",
				QueryType: "A",
			},
		},
		{
			name: "dns query type in lower case",
			raw: `{"id":3,"checker_type":"dns","ip":"10.0.0.53","port":53,` +
				`"query":"example.com","query_type":"aaaa",` +
				`"expected_ips":["2001:db8::10"]}`,
			want: Config{
				ID:          3,
				Interval:    5 * time.Second,
				Timeout:     30 * time.Second,
				Checker:     CheckerDNS,
				IP:          netip.MustParseAddr("10.0.0.53"),
				Port:        53,
				Query:       "example.com",
				QueryType:   "AAAA",
				ExpectedIPs: []netip.Addr{netip.MustParseAddr("2001:db8::10")},
			},
		},
		{
			name: "every field",
			raw: `{"id":2,"interval":"10s","timeout":"3s","retries":1,` +
				`"checker_type":"http","ip":"2001:db8::1","port":443,` +
				`"secure":true,"tls_verify":true,"method":"HEAD",` +
				`"path":"/healthz?full=1","host":"www.example.com",` +
				`"expected_codes":[200,204,301],"response":"\u003cok\u003e"}`,
			want: fullHTTP(),
		},
		{
			name: "port bounds",
			raw:  `{"id":4,"checker_type":"tcp","ip":"::1","port":65535}`,
			want: Config{
				ID:       4,
				Interval: 5 * time.Second,
				Timeout:  30 * time.Second,
				Checker:  CheckerTCP,
				IP:       netip.MustParseAddr("::1"),
				Port:     65535,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tt.raw))
			if err != nil {
				t.Fatalf("ParseConfig(%s) error: %v", tt.raw, err)
			}
			if diff := cmp.Diff(tt.want, got, cmpAddr); diff != "" {
				t.Errorf("ParseConfig(%s) mismatch (-want +got):\n%s", tt.raw, diff)
			}
		})
	}
}

func TestConfigMarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{
			name: "example from the protocol",
			cfg: Config{
				ID:       123,
				Interval: 5 * time.Second,
				Timeout:  30 * time.Second,
				Retries:  2,
				Checker:  CheckerTCP,
				IP:       netip.MustParseAddr("192.168.1.100"),
				Port:     8080,
			},
			want: `{"id":123,"interval":"5s","timeout":"30s","retries":2,` +
				`"checker_type":"tcp","ip":"192.168.1.100","port":8080}`,
		},
		{
			name: "dns",
			cfg:  fullDNS(),
			want: `{"id":3,"interval":"1m0s","timeout":"500ms","retries":2,` +
				`"checker_type":"dns","ip":"10.0.0.53","port":53,` +
				`"query":"www.example.com.","query_type":"AAAA",` +
				`"expected_ips":["2001:db8::10","2001:db8::11"]}`,
		},
		{
			name: "zero values left out but id, checker_type, ip and port",
			cfg:  Config{},
			want: `{"id":0,"checker_type":"","ip":"","port":0}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.cfg)
			if err != nil {
				t.Fatalf("json.Marshal(%v) error: %v", tt.cfg, err)
			}
			if string(got) != tt.want {
				t.Errorf("json.Marshal(config)\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestConfigJSONRoundTrip checks that the flat form of a parsed config
// parses back to the same config.
func TestConfigJSONRoundTrip(t *testing.T) {
	for _, c := range fullConfigs() {
		t.Run(string(c.Checker), func(t *testing.T) {
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatalf("json.Marshal error: %v", err)
			}
			got, err := ParseConfig(b)
			if err != nil {
				t.Fatalf("ParseConfig(%s) error: %v", b, err)
			}
			if diff := cmp.Diff(c, got, cmpAddr); diff != "" {
				t.Errorf("ParseConfig(json.Marshal(c)) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// configErrorTest is a single config that must be rejected: base with the
// changes kv (see patch), or raw if base is nil. field is the text the
// reason must start with; id is the config's id, if it has one.
type configErrorTest struct {
	name  string
	base  map[string]any
	kv    []any
	raw   string
	field string
	id    uint64
	hasID bool
}

// config returns the test's config in the flat JSON form.
func (tt *configErrorTest) config(t testing.TB) json.RawMessage {
	t.Helper()
	if tt.base == nil {
		return json.RawMessage(tt.raw)
	}
	return patch(t, tt.base, tt.kv...)
}

var configErrorTests = []configErrorTest{
	// Common fields.
	{
		name: "unknown checker type",
		base: tcpBase, kv: []any{"checker_type", "smtp"},
		field: "checker_type:", id: 10, hasID: true,
	},
	{
		name: "checker type in upper case",
		base: tcpBase, kv: []any{"checker_type", "TCP"},
		field: "checker_type:", id: 10, hasID: true,
	},
	{
		name: "missing checker type",
		base: tcpBase, kv: []any{"checker_type", absent},
		field: "checker_type:", id: 10, hasID: true,
	},
	{
		name: "port zero",
		base: tcpBase, kv: []any{"port", 0},
		field: "port:", id: 10, hasID: true,
	},
	{
		name: "port missing",
		base: tcpBase, kv: []any{"port", absent},
		field: "port:", id: 10, hasID: true,
	},
	{
		name: "port negative",
		base: httpBase, kv: []any{"port", -80},
		field: "port:", id: 20, hasID: true,
	},
	{
		name: "port too large",
		base: dnsBase, kv: []any{"port", 65536},
		field: "port:", id: 30, hasID: true,
	},
	{
		name: "interval zero",
		base: tcpBase, kv: []any{"interval", "0s"},
		field: "interval:", id: 10, hasID: true,
	},
	{
		name: "interval negative",
		base: tcpBase, kv: []any{"interval", "-5s"},
		field: "interval:", id: 10, hasID: true,
	},
	{
		name: "interval below a nanosecond",
		base: tcpBase, kv: []any{"interval", "0.1ns"},
		field: "interval:", id: 10, hasID: true,
	},
	{
		name: "interval without unit",
		base: tcpBase, kv: []any{"interval", "5"},
		field: "interval:", id: 10, hasID: true,
	},
	{
		name: "timeout zero",
		base: tcpBase, kv: []any{"timeout", "0s"},
		field: "timeout:", id: 10, hasID: true,
	},
	{
		name: "timeout negative",
		base: httpBase, kv: []any{"timeout", "-1ms"},
		field: "timeout:", id: 20, hasID: true,
	},
	{
		name: "timeout unparsable",
		base: httpBase, kv: []any{"timeout", "soon"},
		field: "timeout:", id: 20, hasID: true,
	},
	{
		name: "retries negative",
		base: tcpBase, kv: []any{"retries", -1},
		field: "retries:", id: 10, hasID: true,
	},
	{
		name: "ip unparsable",
		base: tcpBase, kv: []any{"ip", "192.168.1.300"},
		field: "ip:", id: 10, hasID: true,
	},
	{
		name: "ip a host name",
		base: tcpBase, kv: []any{"ip", "localhost"},
		field: "ip:", id: 10, hasID: true,
	},
	{
		name: "ip with port",
		base: tcpBase, kv: []any{"ip", "10.0.0.1:80"},
		field: "ip:", id: 10, hasID: true,
	},
	{
		name: "ip missing",
		base: tcpBase, kv: []any{"ip", absent},
		field: "ip:", id: 10, hasID: true,
	},
	{
		name: "ip empty",
		base: tcpBase, kv: []any{"ip", ""},
		field: "ip:", id: 10, hasID: true,
	},
	{
		name: "ip with zone",
		base: tcpBase, kv: []any{"ip", "fe80::1%eth0"},
		field: "ip:", id: 10, hasID: true,
	},
	{
		name: "unknown field",
		base: tcpBase, kv: []any{"tls", true},
		field: `unknown field "tls"`, id: 10, hasID: true,
	},
	{
		name: "misspelt field",
		base: httpBase, kv: []any{"expected_code", []int{200}},
		field: `unknown field "expected_code"`, id: 20, hasID: true,
	},

	// HTTP.
	{
		name: "http method with space",
		base: httpBase, kv: []any{"method", "GE T"},
		field: "method:", id: 20, hasID: true,
	},
	{
		name: "http method with slash",
		base: httpBase, kv: []any{"method", "GET/1.1"},
		field: "method:", id: 20, hasID: true,
	},
	{
		name: "http method not ASCII",
		base: httpBase, kv: []any{"method", "GÉT"},
		field: "method:", id: 20, hasID: true,
	},
	{
		name: "http path relative",
		base: httpBase, kv: []any{"path", "healthz"},
		field: "path:", id: 20, hasID: true,
	},
	{
		name: "http path a URL",
		base: httpBase, kv: []any{"path", "http://a/"},
		field: "path:", id: 20, hasID: true,
	},
	{
		name: "http path with space",
		base: httpBase, kv: []any{"path", "/a b"},
		field: "path:", id: 20, hasID: true,
	},
	{
		name: "http path with line break",
		base: httpBase, kv: []any{"path", "/a\r\nX: y"},
		field: "path:", id: 20, hasID: true,
	},
	{
		name: "http path with bad escape",
		base: httpBase, kv: []any{"path", "/a%zz"},
		field: "path:", id: 20, hasID: true,
	},
	{
		name: "http path with control character",
		base: httpBase, kv: []any{"path", "/a\x00b"},
		field: "path:", id: 20, hasID: true,
	},
	{
		name: "http host with slash",
		base: httpBase, kv: []any{"host", "a/b"},
		field: "host:", id: 20, hasID: true,
	},
	{
		name: "http expected code too small",
		base: httpBase, kv: []any{"expected_codes", []int{200, 99}},
		field: "expected_codes:", id: 20, hasID: true,
	},
	{
		name: "http expected code too large",
		base: httpBase, kv: []any{"expected_codes", []int{600}},
		field: "expected_codes:", id: 20, hasID: true,
	},

	// DNS.
	{
		name: "dns missing query",
		base: dnsBase, kv: []any{"query", absent},
		field: "query:", id: 30, hasID: true,
	},
	{
		name: "dns empty label",
		base: dnsBase, kv: []any{"query", "www..example.com"},
		field: "query:", id: 30, hasID: true,
	},
	{
		name: "dns root only",
		base: dnsBase, kv: []any{"query", "."},
		field: "query:", id: 30, hasID: true,
	},
	{
		name: "dns label too long",
		base: dnsBase, kv: []any{"query", strings.Repeat("a", 64) + ".com"},
		field: "query:", id: 30, hasID: true,
	},
	{
		name: "dns name too long",
		base: dnsBase, kv: []any{"query", strings.Repeat("abc.", 64) + "com"},
		field: "query:", id: 30, hasID: true,
	},
	{
		name: "dns query with space",
		base: dnsBase, kv: []any{"query", "www example.com"},
		field: "query:", id: 30, hasID: true,
	},
	{
		name: "dns unsupported query type",
		base: dnsBase, kv: []any{"query_type", "SRV"},
		field: "query_type:", id: 30, hasID: true,
	},
	{
		name: "dns query type as a number",
		base: dnsBase, kv: []any{"query_type", "1"},
		field: "query_type:", id: 30, hasID: true,
	},
	{
		name: "dns A with IPv6 expected",
		base: dnsBase, kv: []any{"expected_ips", []string{"10.0.0.1", "::1"}},
		field: "expected_ips:", id: 30, hasID: true,
	},
	{
		name: "dns AAAA with IPv4 expected",
		base: dnsBase, kv: []any{"query_type", "AAAA", "expected_ips", []string{"10.0.0.1"}},
		field: "expected_ips:", id: 30, hasID: true,
	},
	{
		name: "dns expected ip unparsable",
		base: dnsBase, kv: []any{"expected_ips", []string{"10.0.0"}},
		field: "expected_ips:", id: 30, hasID: true,
	},
	{
		name: "dns expected ip with zone",
		base: dnsBase, kv: []any{
			"query_type", "AAAA",
			"expected_ips", []string{"fe80::1%eth0"},
		},
		field: "expected_ips:", id: 30, hasID: true,
	},

	// Fields the checker does not use.
	{
		name: "tcp with method",
		base: tcpBase, kv: []any{"method", "GET"},
		field: "method:", id: 10, hasID: true,
	},
	{
		name: "tcp with expected_codes",
		base: tcpBase, kv: []any{"expected_codes", []int{200}},
		field: "expected_codes:", id: 10, hasID: true,
	},
	{
		name: "tcp with query",
		base: tcpBase, kv: []any{"query", "a.example"},
		field: "query:", id: 10, hasID: true,
	},
	{
		name: "tcp with expected_ips",
		base: tcpBase, kv: []any{"expected_ips", []string{"10.0.0.1"}},
		field: "expected_ips:", id: 10, hasID: true,
	},
	{
		name: "http with send",
		base: httpBase, kv: []any{"send", "x"},
		field: "send:", id: 20, hasID: true,
	},
	{
		name: "http with receive",
		base: httpBase, kv: []any{"receive", "x"},
		field: "receive:", id: 20, hasID: true,
	},
	{
		name: "http with query_type",
		base: httpBase, kv: []any{"query_type", "A"},
		field: "query_type:", id: 20, hasID: true,
	},
	{
		name: "dns with secure",
		base: dnsBase, kv: []any{"secure", true},
		field: "secure:", id: 30, hasID: true,
	},
	{
		name: "dns with tls_verify",
		base: dnsBase, kv: []any{"tls_verify", true},
		field: "tls_verify:", id: 30, hasID: true,
	},
	{
		name: "dns with path",
		base: dnsBase, kv: []any{"path", "/"},
		field: "path:", id: 30, hasID: true,
	},
	{
		name: "dns with host",
		base: dnsBase, kv: []any{"host", "a"},
		field: "host:", id: 30, hasID: true,
	},
	{
		name: "dns with response",
		base: dnsBase, kv: []any{"response", "a"},
		field: "response:", id: 30, hasID: true,
	},

	// Wrong JSON types.
	{
		name: "port as a string",
		base: tcpBase, kv: []any{"port", "8080"},
		field: "port:", id: 10, hasID: true,
	},
	{
		name: "port as a fraction",
		base: tcpBase, kv: []any{"port", 80.5},
		field: "port:", id: 10, hasID: true,
	},
	{
		name: "interval as a number",
		base: tcpBase, kv: []any{"interval", 5},
		field: "interval:", id: 10, hasID: true,
	},
	{
		name: "retries as a string",
		base: tcpBase, kv: []any{"retries", "2"},
		field: "retries:", id: 10, hasID: true,
	},
	{
		name: "secure as a string",
		base: tcpBase, kv: []any{"secure", "true"},
		field: "secure:", id: 10, hasID: true,
	},
	{
		name: "ip as a number",
		base: tcpBase, kv: []any{"ip", int64(3232235876)},
		field: "ip:", id: 10, hasID: true,
	},
	{
		name: "expected_codes as strings",
		base: httpBase, kv: []any{"expected_codes", []string{"200"}},
		field: "expected_codes:", id: 20, hasID: true,
	},
	{
		name: "expected_codes not a list",
		base: httpBase, kv: []any{"expected_codes", 200},
		field: "expected_codes:", id: 20, hasID: true,
	},
	{
		name: "expected_ips not a list",
		base: dnsBase, kv: []any{"expected_ips", "10.0.0.1"},
		field: "expected_ips:", id: 30, hasID: true,
	},
	{
		name: "checker_type as a number",
		base: tcpBase, kv: []any{"checker_type", 1},
		field: "checker_type:", id: 10, hasID: true,
	},

	// The id, which error replies carry when it can be read.
	{
		name: "id missing",
		base: tcpBase, kv: []any{"id", absent},
		field: "id: missing",
	},
	{
		name: "id null",
		base: tcpBase, kv: []any{"id", nil},
		field: "id: missing",
	},
	{
		name: "id as a string",
		base: tcpBase, kv: []any{"id", "10"},
		field: "id:",
	},
	{
		name: "id negative",
		base: tcpBase, kv: []any{"id", -10},
		field: "id:",
	},
	{
		name: "id a fraction",
		base: tcpBase, kv: []any{"id", 1.5},
		field: "id:",
	},
	{
		name: "id too large",
		base: tcpBase, kv: []any{"id", json.RawMessage("18446744073709551616")},
		field: "id:",
	},
	{
		name: "largest id read for the reply",
		base: tcpBase, kv: []any{"id", uint64(18446744073709551615), "port", 0},
		field: "port:", id: 18446744073709551615, hasID: true,
	},
	{
		name: "id zero read for the reply",
		base: tcpBase, kv: []any{"id", 0, "port", 0},
		field: "port:", id: 0, hasID: true,
	},
	{
		name: "id read despite a bad type elsewhere",
		base: tcpBase, kv: []any{"id", 77, "port", "80"},
		field: "port:", id: 77, hasID: true,
	},
	{
		name: "id read despite an unknown field",
		base: tcpBase, kv: []any{"id", 78, "colour", "red"},
		field: `unknown field "colour"`, id: 78, hasID: true,
	},
	{
		name:  "config not an object",
		raw:   `42`,
		field: "",
	},
	{
		name:  "config a list",
		raw:   `[{"id":1}]`,
		field: "",
	},
	{
		name:  "config null",
		raw:   `null`,
		field: "id: missing",
	},
}

func TestUpdateConfigsRejectsInvalidConfig(t *testing.T) {
	for _, tt := range configErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.config(t)
			u := mustDecodeUpdate(t, updateLine(t, raw))

			if len(u.Configs) != 0 {
				t.Errorf("configs %s: got %d accepted, want 0: %v",
					raw, len(u.Configs), u.Configs)
			}
			if len(u.Rejected) != 1 {
				t.Fatalf("configs %s: got %d rejected, want 1", raw, len(u.Rejected))
			}
			checkConfigError(t, u.Rejected[0], 0, tt.id, tt.hasID, tt.field)
		})
	}
}

// checkConfigError checks that ce is about the config at index with the
// given id, and that its reason, after "invalid config: ", starts with
// field.
func checkConfigError(t testing.TB, ce *ConfigError, index int, id uint64,
	hasID bool, field string) {
	t.Helper()
	if ce.Index != index || ce.ID != id || ce.HasID != hasID {
		t.Errorf("ConfigError = {Index: %d, ID: %d, HasID: %t}, "+
			"want {Index: %d, ID: %d, HasID: %t}",
			ce.Index, ce.ID, ce.HasID, index, id, hasID)
	}
	if !errors.Is(ce, ErrInvalidConfig) {
		t.Errorf("ConfigError %q does not wrap ErrInvalidConfig", ce)
	}

	prefix := fmt.Sprintf("configs[%d]: ", index)
	if hasID {
		prefix = fmt.Sprintf("config %d: ", id)
	}
	want := prefix + ErrInvalidConfig.Error() + ": " + field
	if got := ce.Error(); !strings.HasPrefix(got, want) {
		t.Errorf("ConfigError.Error() = %q, want prefix %q", got, want)
	}

	reply := ErrorFor(ce)
	if reply.Message != ce.Error() {
		t.Errorf("ErrorFor(ce).Message = %q, want %q", reply.Message, ce.Error())
	}
	switch {
	case !hasID && reply.ID != nil:
		t.Errorf("ErrorFor(ce).ID = %d, want none", *reply.ID)
	case hasID && (reply.ID == nil || *reply.ID != id):
		t.Errorf("ErrorFor(ce).ID = %v, want %d", reply.ID, id)
	}
}

// TestParseConfigRejects checks ParseConfig alone with the same cases.
func TestParseConfigRejects(t *testing.T) {
	for _, tt := range configErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.config(t)
			c, err := ParseConfig(raw)
			if err == nil {
				t.Fatalf("ParseConfig(%s) = %v, want an error", raw, &c)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("ParseConfig(%s) error %q does not wrap ErrInvalidConfig", raw, err)
			}
			want := ErrInvalidConfig.Error() + ": " + tt.field
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("ParseConfig(%s) error = %q, want prefix %q", raw, err, want)
			}
			if diff := cmp.Diff(Config{}, c, cmpAddr); diff != "" {
				t.Errorf("ParseConfig(%s) returned a config with its error (-want +got):\n%s",
					raw, diff)
			}
		})
	}
}

func TestUpdateConfigsKeepsValidConfigs(t *testing.T) {
	line := updateLine(t,
		patch(t, tcpBase, "id", 1),
		patch(t, tcpBase, "id", 2, "port", 0),
		patch(t, httpBase, "id", 3),
		patch(t, dnsBase, "id", 1, "query", "dup.example"),
		patch(t, tcpBase, "id", absent),
		patch(t, dnsBase, "id", 4),
		patch(t, httpBase, "id", 3, "path", "/dup"),
		patch(t, httpBase, "id", 5, "surprise", 1),
		patch(t, tcpBase, "id", 6, "port", 6),
	)
	u := mustDecodeUpdate(t, line)

	var gotIDs []uint64
	for _, c := range u.Configs {
		gotIDs = append(gotIDs, c.ID)
	}
	if diff := cmp.Diff([]uint64{1, 3, 4, 6}, gotIDs); diff != "" {
		t.Errorf("accepted ids mismatch (-want +got):\n%s", diff)
	}
	if len(u.Configs) == 4 {
		// The first of two configs with one id is the one kept.
		if got := u.Configs[0].Checker; got != CheckerTCP {
			t.Errorf("config 1 checker = %s, want the first config's tcp", got)
		}
		if got := u.Configs[1].Path; got != "/" {
			t.Errorf("config 3 path = %q, want the first config's %q", got, "/")
		}
		if got := u.Configs[3].Port; got != 6 {
			t.Errorf("config 6 port = %d, want 6", got)
		}
	}

	want := []struct {
		index int
		id    uint64
		hasID bool
		field string
	}{
		{index: 1, id: 2, hasID: true, field: "port:"},
		{index: 3, id: 1, hasID: true, field: "id: duplicate"},
		{index: 4, field: "id: missing"},
		{index: 6, id: 3, hasID: true, field: "id: duplicate"},
		{index: 7, id: 5, hasID: true, field: `unknown field "surprise"`},
	}
	if len(u.Rejected) != len(want) {
		t.Fatalf("got %d rejected, want %d: %v", len(u.Rejected), len(want), u.Rejected)
	}
	for i, w := range want {
		checkConfigError(t, u.Rejected[i], w.index, w.id, w.hasID, w.field)
	}
}

// TestUpdateConfigsDuplicateOfRejectedID: the first config with an id wins
// even when it is invalid. Otherwise one update both rejects id 5 (leaving
// its running check as it was) and applies a config for id 5.
func TestUpdateConfigsDuplicateOfRejectedID(t *testing.T) {
	line := updateLine(t,
		patch(t, tcpBase, "id", 5, "port", 0),
		patch(t, tcpBase, "id", 5, "port", 81),
	)
	u := mustDecodeUpdate(t, line)

	if len(u.Configs) != 0 {
		t.Errorf("got %d accepted configs, want 0: %v", len(u.Configs), u.Configs)
	}
	if len(u.Rejected) != 2 {
		t.Fatalf("got %d rejected, want 2: %v", len(u.Rejected), u.Rejected)
	}
	checkConfigError(t, u.Rejected[0], 0, 5, true, "port:")
	checkConfigError(t, u.Rejected[1], 1, 5, true, "id: duplicate")
}

func TestParseConfigsAllValidOrEmpty(t *testing.T) {
	tests := []struct {
		name string
		raws []json.RawMessage
		want int
	}{
		{name: "nil", raws: nil, want: 0},
		{name: "empty", raws: []json.RawMessage{}, want: 0},
		{
			name: "one per checker",
			raws: []json.RawMessage{
				patch(t, tcpBase), patch(t, httpBase), patch(t, dnsBase),
			},
			want: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			configs, rejected := ParseConfigs(tt.raws)
			if configs == nil {
				t.Errorf("ParseConfigs configs = nil, want a list")
			}
			if len(configs) != tt.want || len(rejected) != 0 {
				t.Errorf("ParseConfigs = %d configs, %d rejected; want %d, 0",
					len(configs), len(rejected), tt.want)
			}
		})
	}
}

func TestConfigErrorText(t *testing.T) {
	reason := fmt.Errorf("%w: port: must be within 1-65535, got 0", ErrInvalidConfig)
	tests := []struct {
		name   string
		ce     *ConfigError
		want   string
		wantID *uint64
	}{
		{
			name:   "with id",
			ce:     &ConfigError{Index: 3, ID: 7, HasID: true, Err: reason},
			want:   "config 7: invalid config: port: must be within 1-65535, got 0",
			wantID: ptr(uint64(7)),
		},
		{
			name: "without id",
			ce:   &ConfigError{Index: 3, ID: 7, Err: reason},
			want: "configs[3]: invalid config: port: must be within 1-65535, got 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ce.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if got := tt.ce.Unwrap(); got != reason {
				t.Errorf("Unwrap() = %v, want %v", got, reason)
			}
			got := ErrorFor(tt.ce)
			want := &Error{Message: tt.want, ID: tt.wantID}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ErrorFor mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{
			name: "tcp",
			in:   Config{Checker: CheckerTCP},
			want: Config{
				Checker:  CheckerTCP,
				Interval: 5 * time.Second,
				Timeout:  30 * time.Second,
			},
		},
		{
			name: "http",
			in:   Config{Checker: CheckerHTTP},
			want: Config{
				Checker:       CheckerHTTP,
				Interval:      5 * time.Second,
				Timeout:       30 * time.Second,
				Method:        "GET",
				Path:          "/",
				ExpectedCodes: []int{200},
			},
		},
		{
			name: "dns",
			in:   Config{Checker: CheckerDNS},
			want: Config{
				Checker:   CheckerDNS,
				Interval:  5 * time.Second,
				Timeout:   30 * time.Second,
				QueryType: "A",
			},
		},
		{
			name: "dns query type upper-cased",
			in:   Config{Checker: CheckerDNS, QueryType: "aaaa"},
			want: Config{
				Checker:   CheckerDNS,
				Interval:  5 * time.Second,
				Timeout:   30 * time.Second,
				QueryType: "AAAA",
			},
		},
		{
			name: "set fields kept",
			in: Config{
				Checker:       CheckerHTTP,
				Interval:      time.Second,
				Timeout:       2 * time.Second,
				Retries:       4,
				Method:        "POST",
				Path:          "/x",
				ExpectedCodes: []int{204},
			},
			want: Config{
				Checker:       CheckerHTTP,
				Interval:      time.Second,
				Timeout:       2 * time.Second,
				Retries:       4,
				Method:        "POST",
				Path:          "/x",
				ExpectedCodes: []int{204},
			},
		},
		{
			name: "negative durations left for Validate",
			in:   Config{Checker: CheckerTCP, Interval: -1, Timeout: -1},
			want: Config{Checker: CheckerTCP, Interval: -1, Timeout: -1},
		},
		{
			name: "fields of other checkers left alone",
			in:   Config{Checker: CheckerTCP, QueryType: "a"},
			want: Config{
				Checker:   CheckerTCP,
				Interval:  5 * time.Second,
				Timeout:   30 * time.Second,
				QueryType: "a",
			},
		},
		{
			name: "unknown checker",
			in:   Config{Checker: "udp"},
			want: Config{Checker: "udp", Interval: 5 * time.Second, Timeout: 30 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			got.ApplyDefaults()
			if diff := cmp.Diff(tt.want, got, cmpAddr); diff != "" {
				t.Errorf("ApplyDefaults mismatch (-want +got):\n%s", diff)
			}

			again := got
			again.ApplyDefaults()
			if diff := cmp.Diff(got, again, cmpAddr); diff != "" {
				t.Errorf("ApplyDefaults is not idempotent (-once +twice):\n%s", diff)
			}
		})
	}
}

// TestApplyDefaultsFreshSlice: configs are values shared between actors, so
// two defaulted configs must not share their ExpectedCodes.
func TestApplyDefaultsFreshSlice(t *testing.T) {
	a := Config{Checker: CheckerHTTP}
	b := Config{Checker: CheckerHTTP}
	a.ApplyDefaults()
	b.ApplyDefaults()
	a.ExpectedCodes[0] = 500
	if got := b.ExpectedCodes[0]; got != DefaultHTTPCode {
		t.Errorf("b.ExpectedCodes[0] = %d after changing a's, want %d",
			got, DefaultHTTPCode)
	}
}

func TestValidateAcceptsDefaulted(t *testing.T) {
	for _, c := range fullConfigs() {
		t.Run(string(c.Checker), func(t *testing.T) {
			if err := c.Validate(); err != nil {
				t.Errorf("Validate(%v) = %v, want nil", &c, err)
			}
		})
	}
}

func TestConfigSameProbeAndEqual(t *testing.T) {
	tests := []struct {
		name          string
		base          func() Config
		change        func(c *Config)
		wantSameProbe bool
		wantEqual     bool
	}{
		{name: "identical", base: fullHTTP, change: func(c *Config) {},
			wantSameProbe: true, wantEqual: true},
		{name: "interval", base: fullHTTP, change: func(c *Config) { c.Interval++ },
			wantSameProbe: true},
		{name: "timeout", base: fullTCP, change: func(c *Config) { c.Timeout *= 2 },
			wantSameProbe: true},
		{name: "retries", base: fullDNS, change: func(c *Config) { c.Retries = 0 },
			wantSameProbe: true},
		{name: "interval, timeout and retries", base: fullDNS, change: func(c *Config) {
			c.Interval, c.Timeout, c.Retries = time.Hour, time.Minute, 9
		}, wantSameProbe: true},
		{name: "expected_codes nil and empty", base: fullTCP,
			change:        func(c *Config) { c.ExpectedCodes = []int{} },
			wantSameProbe: true, wantEqual: true},
		{name: "id", base: fullTCP, change: func(c *Config) { c.ID++ }},
		{name: "checker", base: fullTCP, change: func(c *Config) { c.Checker = CheckerHTTP }},
		{name: "ip", base: fullTCP, change: func(c *Config) {
			c.IP = netip.MustParseAddr("192.168.1.101")
		}},
		{name: "ip mapped", base: fullTCP, change: func(c *Config) {
			c.IP = netip.AddrFrom16(c.IP.As16())
		}},
		{name: "port", base: fullTCP, change: func(c *Config) { c.Port++ }},
		{name: "secure", base: fullTCP, change: func(c *Config) { c.Secure = false }},
		{name: "tls_verify", base: fullHTTP, change: func(c *Config) { c.TLSVerify = false }},
		{name: "send", base: fullTCP, change: func(c *Config) { c.Send = "PING\n" }},
		{name: "receive", base: fullTCP, change: func(c *Config) { c.Receive = "" }},
		{name: "method", base: fullHTTP, change: func(c *Config) { c.Method = "GET" }},
		{name: "path", base: fullHTTP, change: func(c *Config) { c.Path = "/" }},
		{name: "host", base: fullHTTP, change: func(c *Config) { c.Host = "" }},
		{name: "response", base: fullHTTP, change: func(c *Config) { c.Response = "ok" }},
		{name: "expected code changed", base: fullHTTP,
			change: func(c *Config) { c.ExpectedCodes = []int{200, 204, 302} }},
		{name: "expected code added", base: fullHTTP,
			change: func(c *Config) { c.ExpectedCodes = append(c.ExpectedCodes, 404) }},
		{name: "expected codes reordered", base: fullHTTP,
			change: func(c *Config) { c.ExpectedCodes = []int{204, 200, 301} }},
		{name: "expected codes removed", base: fullHTTP,
			change: func(c *Config) { c.ExpectedCodes = nil }},
		{name: "query", base: fullDNS, change: func(c *Config) { c.Query = "example.com." }},
		{name: "query_type", base: fullDNS, change: func(c *Config) { c.QueryType = "A" }},
		{name: "expected ip changed", base: fullDNS, change: func(c *Config) {
			c.ExpectedIPs = []netip.Addr{c.ExpectedIPs[0], netip.MustParseAddr("2001:db8::12")}
		}},
		{name: "expected ip removed", base: fullDNS,
			change: func(c *Config) { c.ExpectedIPs = c.ExpectedIPs[:1] }},
		{name: "expected ips reordered", base: fullDNS, change: func(c *Config) {
			c.ExpectedIPs = []netip.Addr{c.ExpectedIPs[1], c.ExpectedIPs[0]}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.base(), tt.base()
			tt.change(&b)
			for _, dir := range []struct {
				name string
				x, y *Config
			}{{"a.x(b)", &a, &b}, {"b.x(a)", &b, &a}} {
				if got := dir.x.SameProbe(dir.y); got != tt.wantSameProbe {
					t.Errorf("%s: SameProbe = %t, want %t", dir.name, got, tt.wantSameProbe)
				}
				if got := dir.x.Equal(dir.y); got != tt.wantEqual {
					t.Errorf("%s: Equal = %t, want %t", dir.name, got, tt.wantEqual)
				}
			}
		})
	}
}

func TestConfigTargetAndString(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		wantTarget string
		wantString string
	}{
		{
			name:       "tcp ipv4",
			cfg:        fullTCP(),
			wantTarget: "192.168.1.100:8080",
			wantString: "tcp 192.168.1.100:8080",
		},
		{
			name:       "http ipv6",
			cfg:        fullHTTP(),
			wantTarget: "[2001:db8::1]:443",
			wantString: "http HEAD /healthz?full=1 [2001:db8::1]:443",
		},
		{
			name:       "dns ipv4",
			cfg:        fullDNS(),
			wantTarget: "10.0.0.53:53",
			wantString: "dns www.example.com. AAAA 10.0.0.53:53",
		},
		{
			name:       "ipv6 loopback",
			cfg:        Config{Checker: CheckerTCP, IP: netip.IPv6Loopback(), Port: 1},
			wantTarget: "[::1]:1",
			wantString: "tcp [::1]:1",
		},
		{
			name: "ipv4-mapped ipv6",
			cfg: Config{Checker: CheckerTCP,
				IP: netip.MustParseAddr("::ffff:10.0.0.1"), Port: 65535},
			wantTarget: "[::ffff:10.0.0.1]:65535",
			wantString: "tcp [::ffff:10.0.0.1]:65535",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.Target(); got != tt.wantTarget {
				t.Errorf("Target() = %q, want %q", got, tt.wantTarget)
			}
			if got := tt.cfg.String(); got != tt.wantString {
				t.Errorf("String() = %q, want %q", got, tt.wantString)
			}
		})
	}
}

// Equal compares Config field by field; changing any one field, as
// reflect finds them, must make two configs unequal.
func TestConfigEqualSeesEveryField(t *testing.T) {
	base := Config{ID: 1, Checker: CheckerTCP,
		IP: netip.MustParseAddr("127.0.0.1"), Port: 80}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		field := typ.Field(i)
		changed := base
		f := reflect.ValueOf(&changed).Elem().Field(i)
		switch v := f.Addr().Interface().(type) {
		case *netip.Addr:
			*v = netip.MustParseAddr("127.0.0.2")
		case *[]int:
			*v = []int{200}
		case *[]netip.Addr:
			*v = []netip.Addr{netip.MustParseAddr("127.0.0.3")}
		case *[]string:
			*v = []string{"x"}
		default:
			switch f.Kind() {
			case reflect.String:
				f.SetString(f.String() + "x")
			case reflect.Bool:
				f.SetBool(!f.Bool())
			case reflect.Int, reflect.Int64:
				f.SetInt(f.Int() + 7)
			case reflect.Uint64:
				f.SetUint(f.Uint() + 7)
			default:
				t.Fatalf("field %s of kind %s: teach this test to change it",
					field.Name, f.Kind())
			}
		}
		if base.Equal(&changed) || changed.Equal(&base) {
			t.Errorf("Equal is true after changing %s", field.Name)
		}
	}
}
