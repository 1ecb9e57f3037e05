package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenLines is the golden file of every message of protocolMessages,
// one encoded line each, in order.
var goldenLines = filepath.Join("testdata", "lines.golden")

// sampleStatuses covers a nanosecond last_check, an offset other than UTC,
// whole seconds, a message that needs escaping and the zero status.
func sampleStatuses() []CheckStatus {
	return []CheckStatus{
		{ID: 1, Status: Status{
			State:     StateHealthy,
			Message:   "HTTP 200 OK",
			LastCheck: time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC),
			Duration:  12345678 * time.Nanosecond,
			Successes: 10,
			Failures:  2,
			Restarts:  1,
		}},
		{ID: 2, Status: Status{
			State:   StateUnhealthy,
			Message: "dial: connection refused\nretrying \"soon\" \u2603",
			LastCheck: time.Date(2024, 3, 1, 5, 30, 45, 1,
				time.FixedZone("", -7*60*60)),
			Duration: 30 * time.Second,
			Failures: 1 << 40,
		}},
		{ID: 3, Status: Status{
			State:       StateHealthy,
			LastCheck:   time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC),
			Duration:    time.Millisecond,
			Successes:   1,
			Unconfirmed: true,
		}},
		{ID: 18446744073709551615, Status: Status{}},
	}
}

// protocolMessage is a message of the protocol and what decoding its
// encoding must give, when that is not the message itself.
type protocolMessage struct {
	name string
	msg  any
	want any
}

func protocolMessages() []protocolMessage {
	return []protocolMessage{
		{
			name: "update_configs every checker",
			msg: &UpdateConfigs{
				Configs: []Config{fullTCP(), fullHTTP(), fullDNS()},
			},
		},
		{
			name: "update_configs rejected is not sent",
			msg: &UpdateConfigs{
				Configs: []Config{fullTCP()},
				Rejected: []*ConfigError{{
					Index: 1, ID: 9, HasID: true, Err: ErrInvalidConfig,
				}},
			},
			want: &UpdateConfigs{Configs: []Config{fullTCP()}},
		},
		{
			name: "update_configs empty",
			msg:  &UpdateConfigs{},
			want: &UpdateConfigs{Configs: []Config{}},
		},
		{name: "request_status", msg: &RequestStatus{}},
		{name: "shutdown", msg: &Shutdown{}},
		{name: "ready", msg: &Ready{}},
		{
			name: "notification_batch",
			msg:  &NotificationBatch{Notifications: sampleStatuses()},
		},
		{
			name: "notification_batch periodic",
			msg:  &NotificationBatch{Notifications: sampleStatuses(), Periodic: true},
		},
		{
			name: "notification_batch empty",
			msg:  &NotificationBatch{},
			want: &NotificationBatch{Notifications: []CheckStatus{}},
		},
		{
			name: "status_response",
			msg:  &StatusResponse{Statuses: sampleStatuses()},
		},
		{
			name: "status_response empty",
			msg:  &StatusResponse{Statuses: []CheckStatus{}},
		},
		{
			name: "error without id",
			msg:  &Error{Message: "request_status: timed out"},
		},
		{
			name: "error with id",
			msg: &Error{
				Message: "config 7: invalid config: port: must be within 1-65535, got 0",
				ID:      ptr(uint64(7)),
			},
		},
		{
			name: "error with id zero",
			msg:  &Error{Message: "config 0: invalid config: ip: missing", ID: ptr(uint64(0))},
		},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, tt := range protocolMessages() {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == nil {
				want = tt.msg
			}

			line := mustEncode(t, tt.msg)
			got, err := DecodeLine(line)
			if err != nil {
				t.Fatalf("DecodeLine(%s) error: %v", line, err)
			}
			if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
				t.Errorf("DecodeLine(EncodeLine(msg)) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEncodeLineGolden pins the wire form of every message. Run with
// -update after a deliberate change to the protocol.
func TestEncodeLineGolden(t *testing.T) {
	var got bytes.Buffer
	for _, tt := range protocolMessages() {
		got.Write(mustEncode(t, tt.msg))
	}

	if *update {
		if err := os.WriteFile(goldenLines, got.Bytes(), 0o644); err != nil {
			t.Fatalf("writing golden file: %v", err)
		}
	}
	want, err := os.ReadFile(goldenLines)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("encoded lines differ from %s (-want +got):\n%s",
			goldenLines, diff)
	}
}

// TestDecodeGoldenLines checks that every line of the golden file, as a
// peer would send it, decodes.
func TestDecodeGoldenLines(t *testing.T) {
	for i, line := range readGoldenLines(t) {
		if _, err := DecodeLine(line); err != nil {
			t.Errorf("line %d: DecodeLine(%s) error: %v", i+1, line, err)
		}
	}
}

func readGoldenLines(t testing.TB) [][]byte {
	t.Helper()
	b, err := os.ReadFile(goldenLines)
	if err != nil {
		t.Fatalf("reading golden file: %v", err)
	}
	return bytes.SplitAfter(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

func TestEncodeLineFields(t *testing.T) {
	tests := []struct {
		name string
		msg  any
		want []string
		omit []string
	}{
		{
			name: "empty configs is a list",
			msg:  &UpdateConfigs{},
			want: []string{`"configs":[]`},
		},
		{
			name: "empty notifications is a list",
			msg:  &NotificationBatch{},
			want: []string{`"notifications":[]`},
		},
		{
			name: "empty statuses is a list",
			msg:  &StatusResponse{},
			want: []string{`"statuses":[]`},
		},
		{
			name: "no payload",
			msg:  &Ready{},
			want: []string{`{"type":"ready"}` + "\n"},
		},
		{
			name: "error without id",
			msg:  &Error{Message: "boom"},
			want: []string{`"message":"boom"`},
			omit: []string{`"id"`},
		},
		{
			name: "error with id",
			msg:  &Error{Message: "boom", ID: ptr(uint64(42))},
			want: []string{`"message":"boom"`, `"id":42`},
		},
		{
			name: "zero last_check is left out",
			msg: &NotificationBatch{Notifications: []CheckStatus{
				{ID: 1, Status: Status{Duration: time.Second}},
			}},
			want: []string{`"state":"unknown"`, `"duration":"1s"`},
			omit: []string{`"last_check"`},
		},
		{
			name: "last_check keeps nanoseconds",
			msg: &StatusResponse{Statuses: []CheckStatus{{ID: 1, Status: Status{
				State:     StateHealthy,
				LastCheck: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC),
			}}}},
			want: []string{`"last_check":"2024-01-02T03:04:05.000000006Z"`},
		},
		{
			name: "rejected configs are not sent",
			msg: &UpdateConfigs{Rejected: []*ConfigError{
				{Index: 0, ID: 1, HasID: true, Err: ErrInvalidConfig},
			}},
			want: []string{`{"type":"update_configs","configs":[]}` + "\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := string(mustEncode(t, tt.msg))
			for _, w := range tt.want {
				if !strings.Contains(line, w) {
					t.Errorf("EncodeLine = %s, want it to contain %s", line, w)
				}
			}
			for _, o := range tt.omit {
				if strings.Contains(line, o) {
					t.Errorf("EncodeLine = %s, want no %s", line, o)
				}
			}
		})
	}
}

func TestEncodeLineUnknownMessage(t *testing.T) {
	tests := []struct {
		name string
		msg  any
	}{
		{name: "nil", msg: nil},
		{name: "not a message", msg: 42},
		{name: "message by value", msg: Ready{}},
		{name: "actor-only message", msg: &ProbeResult{}},
		{name: "config", msg: ptr(fullTCP())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, err := EncodeLine(tt.msg)
			if !errors.Is(err, ErrUnknownType) {
				t.Errorf("EncodeLine(%#v) = %q, %v; want error %v",
					tt.msg, line, err, ErrUnknownType)
			}
		})
	}
}

func TestEncodeLineInvalidState(t *testing.T) {
	msg := &NotificationBatch{Notifications: []CheckStatus{
		{ID: 1, Status: Status{State: State(7)}},
	}}
	if line, err := EncodeLine(msg); err == nil {
		t.Errorf("EncodeLine(state 7) = %s, want an error", line)
	}
}

// TestEncodeLineTypedNil: a nil pointer of a message type should be an
// error, as it is for an untyped nil, not a panic in the caller's actor.
func TestEncodeLineTypedNil(t *testing.T) {
	tests := []struct {
		name string
		msg  any
	}{
		{name: "update_configs", msg: (*UpdateConfigs)(nil)},
		{name: "notification_batch", msg: (*NotificationBatch)(nil)},
		{name: "status_response", msg: (*StatusResponse)(nil)},
		{name: "error", msg: (*Error)(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("EncodeLine(%T(nil)) panicked: %v", tt.msg, r)
				}
			}()
			if line, err := EncodeLine(tt.msg); err == nil {
				t.Errorf("EncodeLine(%T(nil)) = %s, want an error", tt.msg, line)
			}
		})
	}
}

func TestDecodeLineValid(t *testing.T) {
	tests := []struct {
		name string
		line string
		want any
	}{
		{
			name: "without newline",
			line: `{"type":"request_status"}`,
			want: &RequestStatus{},
		},
		{
			name: "with CRLF",
			line: "{\"type\":\"shutdown\"}\r\n",
			want: &Shutdown{},
		},
		{
			name: "spaces around fields",
			line: ` { "type" : "ready" } ` + "\n",
			want: &Ready{},
		},
		{
			name: "empty config list is an empty set",
			line: `{"type":"update_configs","configs":[]}`,
			want: &UpdateConfigs{Configs: []Config{}},
		},
		{
			name: "error with id",
			line: `{"type":"error","message":"config 5: bad","id":5}`,
			want: &Error{Message: "config 5: bad", ID: ptr(uint64(5))},
		},
		{
			name: "fields in any order",
			line: `{"id":5,"message":"m","type":"error"}`,
			want: &Error{Message: "m", ID: ptr(uint64(5))},
		},
		{
			name: "status with fields left out",
			line: `{"type":"status_response","statuses":[{"id":4,"status":{"state":"healthy"}}]}`,
			want: &StatusResponse{Statuses: []CheckStatus{
				{ID: 4, Status: Status{State: StateHealthy}},
			}},
		},
		{
			name: "last_check with offset",
			line: `{"type":"notification_batch","notifications":[{"id":1,"status":` +
				`{"state":"unhealthy","message":"","last_check":"2024-03-01T14:30:45.5+02:00",` +
				`"duration":"1.5s","successes":0,"failures":3,"restarts":0}}]}`,
			want: &NotificationBatch{Notifications: []CheckStatus{{ID: 1, Status: Status{
				State:     StateUnhealthy,
				LastCheck: time.Date(2024, 3, 1, 12, 30, 45, 5e8, time.UTC),
				Duration:  1500 * time.Millisecond,
				Failures:  3,
			}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeLine([]byte(tt.line))
			if err != nil {
				t.Fatalf("DecodeLine(%s) error: %v", tt.line, err)
			}
			if diff := cmp.Diff(tt.want, got, cmpAddr); diff != "" {
				t.Errorf("DecodeLine(%s) mismatch (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

// lineErrorTests are lines that DecodeLine must reject as a whole. want is
// a substring of the error; is, if set, an error it must match.
var lineErrorTests = []struct {
	name string
	line string
	is   error
	want string
}{
	{name: "empty", line: "", want: "malformed line"},
	{name: "blank", line: "\n", want: "malformed line"},
	{name: "truncated", line: `{"type":"ready"`, want: "malformed line"},
	{name: "not JSON", line: `type=ready`, want: "malformed line"},
	{name: "single quotes", line: `{'type':'ready'}`, want: "malformed line"},
	{name: "array", line: `[{"type":"ready"}]`, want: "malformed line"},
	{name: "string", line: `"ready"`, want: "malformed line"},
	{name: "missing type", line: `{}`, is: ErrMissingType},
	{name: "null", line: `null`, is: ErrMissingType},
	{name: "empty type", line: `{"type":""}`, is: ErrMissingType},
	{name: "unknown type", line: `{"type":"hello"}`, is: ErrUnknownType, want: `"hello"`},
	{name: "type in upper case", line: `{"type":"READY"}`, is: ErrUnknownType},
	{name: "type not a string", line: `{"type":1}`, want: "type:"},
	{
		name: "unknown field",
		line: `{"type":"ready","verbose":true}`,
		want: `unknown field "verbose"`,
	},
	{
		name: "message on ready",
		line: `{"type":"ready","message":"hi"}`,
		want: "field message does not belong",
	},
	{
		name: "id on request_status",
		line: `{"type":"request_status","id":1}`,
		want: "field id does not belong",
	},
	{
		name: "configs on shutdown",
		line: `{"type":"shutdown","configs":[]}`,
		want: "field configs does not belong",
	},
	{
		name: "statuses on notification_batch",
		line: `{"type":"notification_batch","notifications":[],"statuses":[]}`,
		want: "field statuses does not belong",
	},
	{
		name: "periodic on status_response",
		line: `{"type":"status_response","statuses":[],"periodic":true}`,
		want: "field periodic does not belong",
	},
	{
		name: "notifications on status_response",
		line: `{"type":"status_response","notifications":[]}`,
		want: "field notifications does not belong",
	},
	{
		name: "configs on error",
		line: `{"type":"error","message":"m","configs":[]}`,
		want: "field configs does not belong",
	},
	{
		name: "message on update_configs",
		line: `{"type":"update_configs","configs":[],"message":"m"}`,
		want: "field message does not belong",
	},
	{
		name: "update_configs without configs",
		line: `{"type":"update_configs"}`,
		want: "configs: missing",
	},
	{
		name: "update_configs with null configs",
		line: `{"type":"update_configs","configs":null}`,
		want: "configs: missing",
	},
	{
		name: "configs an object",
		line: `{"type":"update_configs","configs":{"id":1}}`,
		want: "configs: must be a list",
	},
	{
		name: "configs a string",
		line: `{"type":"update_configs","configs":"[]"}`,
		want: "configs: must be a list",
	},
	{
		name: "configs a number",
		line: `{"type":"update_configs","configs":0}`,
		want: "configs: must be a list",
	},
	{
		name: "trailing garbage",
		line: `{"type":"ready"} x`,
		want: "unexpected data after the JSON value",
	},
	{
		name: "two objects",
		line: `{"type":"ready"}{"type":"shutdown"}`,
		want: "unexpected data after the JSON value",
	},
	{
		name: "two lines",
		line: "{\"type\":\"ready\"}\n{\"type\":\"shutdown\"}\n",
		want: "unexpected data after the JSON value",
	},
	{
		name: "notifications not a list",
		line: `{"type":"notification_batch","notifications":{}}`,
		want: "malformed line",
	},
	{
		name: "unknown field in a notification",
		line: `{"type":"notification_batch","notifications":[{"id":1,"state":"healthy"}]}`,
		want: `unknown field "state"`,
	},
	{
		name: "unknown state",
		line: `{"type":"status_response","statuses":[{"id":1,"status":{"state":"up"}}]}`,
		want: `unknown state "up"`,
	},
	{
		name: "state as a number",
		line: `{"type":"status_response","statuses":[{"id":1,"status":{"state":2}}]}`,
		want: "state:",
	},
	{
		name: "bad last_check",
		line: `{"type":"notification_batch","notifications":[{"id":1,` +
			`"status":{"last_check":"2024-03-01 12:00:00"}}]}`,
		want: "last_check:",
	},
	{
		name: "bad duration",
		line: `{"type":"notification_batch","notifications":[{"id":1,` +
			`"status":{"duration":"5"}}]}`,
		want: "duration:",
	},
	{
		name: "negative id",
		line: `{"type":"error","message":"m","id":-1}`,
		want: "id:",
	},
}

func TestDecodeLineErrors(t *testing.T) {
	for _, tt := range lineErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := DecodeLine([]byte(tt.line))
			if err == nil {
				t.Fatalf("DecodeLine(%q) = %#v, want an error", tt.line, msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("DecodeLine(%q) error = %v, want %v", tt.line, err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeLine(%q) error = %q, want it to contain %q",
					tt.line, err, tt.want)
			}
		})
	}
}

// TestDecodeLineErrorMessageIsNil: a failed DecodeLine must return a nil
// message, so that a caller testing msg != nil, or switching on its type,
// does not act on a failed line.
func TestDecodeLineErrorMessageIsNil(t *testing.T) {
	for _, tt := range lineErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := DecodeLine([]byte(tt.line))
			if err != nil && msg != nil {
				t.Errorf("DecodeLine(%q) = %#v, %v; want a nil message",
					tt.line, msg, err)
			}
		})
	}
}

// TestFieldNamesAreExact: the protocol's field names are lower case and
// given once; encoding/json matches names without regard to case and keeps
// the last of repeated names, so a misspelt or repeated field slips through
// instead of being rejected as unknown.
func TestFieldNamesAreExact(t *testing.T) {
	t.Run("line", func(t *testing.T) {
		for _, line := range []string{
			`{"TYPE":"ready"}`,
			`{"type":"error","Message":"m"}`,
			`{"type":"ready","type":"shutdown"}`,
		} {
			if msg, err := DecodeLine([]byte(line)); err == nil {
				t.Errorf("DecodeLine(%s) = %#v, want an error", line, msg)
			}
		}
	})
	t.Run("config", func(t *testing.T) {
		for _, raw := range []json.RawMessage{
			patch(t, tcpBase, "port", absent, "Port", 80),
			patch(t, tcpBase, "id", absent, "ID", 10),
			json.RawMessage(`{"id":10,"checker_type":"tcp",` +
				`"ip":"192.168.1.100","port":0,"port":80}`),
		} {
			u := mustDecodeUpdate(t, updateLine(t, raw))
			if len(u.Rejected) != 1 {
				t.Errorf("config %s: got %d rejected, want 1", raw, len(u.Rejected))
			}
		}
	})
}
