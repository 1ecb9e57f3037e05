package messages

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// cmpAddr compares netip.Addr values, whose fields are unexported, with ==.
var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// fullTCP, fullHTTP and fullDNS set every field their checker uses, with
// defaults already applied, so they survive a round trip unchanged.
func fullTCP() Config {
	return Config{
		ID:        1,
		Interval:  2 * time.Second,
		Timeout:   1500 * time.Millisecond,
		Retries:   3,
		Checker:   CheckerTCP,
		IP:        netip.MustParseAddr("192.168.1.100"),
		Port:      8080,
		Secure:    true,
		TLSVerify: true,
		Send:      "PING\r\n",
		Receive:   "+PONG",
	}
}

func fullHTTP() Config {
	return Config{
		ID:            2,
		Interval:      10 * time.Second,
		Timeout:       3 * time.Second,
		Retries:       1,
		Checker:       CheckerHTTP,
		IP:            netip.MustParseAddr("2001:db8::1"),
		Port:          443,
		Secure:        true,
		TLSVerify:     true,
		Method:        "HEAD",
		Path:          "/healthz?full=1",
		Host:          "www.example.com",
		ExpectedCodes: []int{200, 204, 301},
		Response:      "<ok>",
	}
}

func fullDNS() Config {
	return Config{
		ID:        3,
		Interval:  time.Minute,
		Timeout:   500 * time.Millisecond,
		Retries:   2,
		Checker:   CheckerDNS,
		IP:        netip.MustParseAddr("10.0.0.53"),
		Port:      53,
		Query:     "www.example.com.",
		QueryType: "AAAA",
		ExpectedIPs: []netip.Addr{
			netip.MustParseAddr("2001:db8::10"),
			netip.MustParseAddr("2001:db8::11"),
		},
	}
}

// absent, as a value in a config patch, removes the field.
type absentField struct{}

var absent absentField

// Minimal valid configs in the protocol's flat form, one per checker type.
var (
	tcpBase = map[string]any{
		"id": 10, "checker_type": "tcp", "ip": "192.168.1.100", "port": 8080,
	}
	httpBase = map[string]any{
		"id": 20, "checker_type": "http", "ip": "10.0.0.1", "port": 80,
	}
	dnsBase = map[string]any{
		"id": 30, "checker_type": "dns", "ip": "10.0.0.53", "port": 53,
		"query": "www.example.com",
	}
)

// patch returns base in the flat JSON form with each key of kv set to the
// value after it, or removed if that value is absent. A json.RawMessage
// value is used as is, to put any JSON type in a field.
func patch(t testing.TB, base map[string]any, kv ...any) json.RawMessage {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatalf("patch: odd number of arguments: %v", kv)
	}
	m := maps.Clone(base)
	for i := 0; i < len(kv); i += 2 {
		key := kv[i].(string)
		if kv[i+1] == absent {
			delete(m, key)
			continue
		}
		m[key] = kv[i+1]
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("patch: %v", err)
	}
	return b
}

// updateLine returns an update_configs line carrying configs.
func updateLine(t testing.TB, configs ...json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"type":    TypeUpdateConfigs,
		"configs": append([]json.RawMessage{}, configs...),
	})
	if err != nil {
		t.Fatalf("updateLine: %v", err)
	}
	return append(b, '\n')
}

// mustDecodeUpdate decodes line, which must be an update_configs line.
func mustDecodeUpdate(t testing.TB, line []byte) *UpdateConfigs {
	t.Helper()
	msg, err := DecodeLine(line)
	if err != nil {
		t.Fatalf("DecodeLine(%s) error: %v", line, err)
	}
	u, ok := msg.(*UpdateConfigs)
	if !ok {
		t.Fatalf("DecodeLine(%s) = %T, want *UpdateConfigs", line, msg)
	}
	return u
}

// mustEncode encodes msg and checks the line's shape.
func mustEncode(t testing.TB, msg any) []byte {
	t.Helper()
	line, err := EncodeLine(msg)
	if err != nil {
		t.Fatalf("EncodeLine(%#v) error: %v", msg, err)
	}
	checkLineShape(t, line)
	return line
}

// checkLineShape reports a line that is not one JSON object tagged by a
// leading "type" and terminated by its only "\n".
func checkLineShape(t testing.TB, line []byte) {
	t.Helper()
	if !bytes.HasSuffix(line, []byte("\n")) {
		t.Errorf("line %q does not end in \\n", line)
	}
	if n := bytes.Count(line, []byte("\n")); n != 1 {
		t.Errorf("line %q has %d newlines, want 1", line, n)
	}
	if !bytes.HasPrefix(line, []byte(`{"type":`)) {
		t.Errorf("line %q does not start with the type field", line)
	}
}

func ptr[T any](v T) *T { return &v }
