package messages

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzDecodeLine checks that DecodeLine never panics, that what it decodes
// encodes again, and that the encoding decodes to the same message.
func FuzzDecodeLine(f *testing.F) {
	for _, line := range readGoldenLines(f) {
		f.Add(line)
	}
	for _, tt := range lineErrorTests {
		f.Add([]byte(tt.line))
	}
	var bad []json.RawMessage
	for _, tt := range configErrorTests {
		bad = append(bad, tt.config(f))
	}
	f.Add(updateLine(f, bad...))
	f.Add(updateLine(f,
		patch(f, tcpBase), patch(f, httpBase, "port", 0), patch(f, dnsBase),
		patch(f, tcpBase, "port", 9), patch(f, httpBase, "id", absent),
	))
	f.Add([]byte(`{"type":"update_configs","configs":[{"id":123,` +
		`"interval":"5s","timeout":"30s","retries":2,"checker_type":"tcp",` +
		`"ip":"192.168.1.100","port":8080}]}` + "\n"))

	f.Fuzz(func(t *testing.T, line []byte) {
		msg, err := DecodeLine(line)
		if err != nil {
			return
		}
		if u, ok := msg.(*UpdateConfigs); ok {
			checkUpdate(t, line, u)
		}

		enc, err := EncodeLine(msg)
		if err != nil {
			t.Fatalf("EncodeLine(DecodeLine(%q)) error: %v", line, err)
		}
		checkLineShape(t, enc)
		again, err := DecodeLine(enc)
		if err != nil {
			t.Fatalf("DecodeLine(%s) of a re-encoded line error: %v", enc, err)
		}

		// Rejected is not sent: only the accepted configs travel, and
		// all of them are accepted again.
		if u, ok := msg.(*UpdateConfigs); ok {
			u2 := again.(*UpdateConfigs)
			if len(u2.Rejected) != 0 {
				t.Errorf("re-encoded configs %s rejected: %v", enc, u2.Rejected)
			}
			msg, again = u.Configs, u2.Configs
		}
		opts := []cmp.Option{cmpAddr, cmpopts.EquateEmpty()}
		if diff := cmp.Diff(msg, again, opts...); diff != "" {
			t.Errorf("line %q\nre-encoded %s\ndecodes differently (-first +second):\n%s",
				line, enc, diff)
		}
	})
}

// checkUpdate checks that u, decoded from line, accounts for every config
// of the line once, in order, and accepts only valid configs with
// distinct ids.
func checkUpdate(t *testing.T, line []byte, u *UpdateConfigs) {
	t.Helper()
	var raw struct{ Configs []json.RawMessage }
	if err := json.Unmarshal(line, &raw); err != nil {
		t.Fatalf("json.Unmarshal(%q) error after DecodeLine accepted it: %v", line, err)
	}
	if got, want := len(u.Configs)+len(u.Rejected), len(raw.Configs); got != want {
		t.Errorf("%d accepted + %d rejected configs, want %d in all",
			len(u.Configs), len(u.Rejected), want)
	}

	last := -1
	for _, ce := range u.Rejected {
		if ce.Index <= last || ce.Index >= len(raw.Configs) {
			t.Errorf("rejected index %d out of order or range (after %d, of %d)",
				ce.Index, last, len(raw.Configs))
		}
		last = ce.Index
		if !errors.Is(ce, ErrInvalidConfig) {
			t.Errorf("rejection %q does not wrap ErrInvalidConfig", ce)
		}
	}

	seen := make(map[uint64]bool)
	for i := range u.Configs {
		c := &u.Configs[i]
		if seen[c.ID] {
			t.Errorf("id %d accepted twice", c.ID)
		}
		seen[c.ID] = true
		if err := c.Validate(); err != nil {
			t.Errorf("accepted config %v is invalid: %v", c, err)
		}
	}
}

// FuzzParseConfig checks that ParseConfig never panics and that a config
// it accepts survives json.Marshal and ParseConfig unchanged.
func FuzzParseConfig(f *testing.F) {
	for _, c := range fullConfigs() {
		b, err := json.Marshal(c)
		if err != nil {
			f.Fatalf("json.Marshal(%v) error: %v", &c, err)
		}
		f.Add(b)
	}
	for _, base := range []map[string]any{tcpBase, httpBase, dnsBase} {
		f.Add([]byte(patch(f, base)))
	}
	for _, tt := range configErrorTests {
		f.Add([]byte(tt.config(f)))
	}
	f.Add([]byte(`{"id":7,"checker_type":"dns","ip":"::1","port":53,` +
		`"query":"a.example.","query_type":"aaaa","expected_ips":["::ffff:1.2.3.4"]}`))

	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseConfig(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("ParseConfig(%q) error %q does not wrap ErrInvalidConfig",
					raw, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Errorf("ParseConfig(%q) = %v, which Validate rejects: %v", raw, &c, err)
		}
		defaulted := c
		defaulted.ApplyDefaults()
		if !defaulted.Equal(&c) {
			t.Errorf("ApplyDefaults changed the parsed config %v to %v", &c, &defaulted)
		}

		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("json.Marshal(ParseConfig(%q)) error: %v", raw, err)
		}
		again, err := ParseConfig(b)
		if err != nil {
			t.Fatalf("ParseConfig(%s) of a re-encoded config error: %v", b, err)
		}
		if !c.Equal(&again) {
			t.Errorf("config %q\nre-encoded %s\nparses differently (-first +second):\n%s",
				raw, b, cmp.Diff(c, again, cmpAddr))
		}
	})
}

// FuzzStatusJSON checks that a status object that decodes encodes again
// and decodes to the same status.
func FuzzStatusJSON(f *testing.F) {
	for _, cs := range sampleStatuses() {
		b, err := json.Marshal(cs.Status)
		if err != nil {
			f.Fatalf("json.Marshal(%+v) error: %v", cs.Status, err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"state":"up","last_check":"2024-03-01 12:30:45Z","duration":"5"}`))
	f.Add([]byte(`{"last_check":"0000-01-01T00:00:00+23:59",` +
		`"duration":"-9223372036854775808ns"}`))

	f.Fuzz(func(t *testing.T, b []byte) {
		var s Status
		if err := json.Unmarshal(b, &s); err != nil {
			return
		}
		enc, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("json.Marshal of status decoded from %q error: %v", b, err)
		}
		var again Status
		if err := json.Unmarshal(enc, &again); err != nil {
			t.Fatalf("json.Unmarshal(%s) of a re-encoded status error: %v", enc, err)
		}
		if diff := cmp.Diff(s, again); diff != "" {
			t.Errorf("status %q\nre-encoded %s\ndecodes differently (-first +second):\n%s",
				b, enc, diff)
		}
	})
}

// FuzzParseState checks that ParseState accepts exactly the names String
// returns.
func FuzzParseState(f *testing.F) {
	for _, name := range []string{"unknown", "unhealthy", "healthy", "", "state(3)"} {
		f.Add(name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		s, err := ParseState(name)
		if err != nil {
			return
		}
		if got := s.String(); got != name {
			t.Errorf("ParseState(%q) = %d, whose String() is %q", name, int(s), got)
		}
		if b, err := s.MarshalText(); err != nil || string(b) != name {
			t.Errorf("MarshalText() of ParseState(%q) = %q, %v", name, b, err)
		}
	})
}
