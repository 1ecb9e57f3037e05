package tests

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/lbhealth/hcsupervisor/messages"
)

// maxLine is the line limit of the server in TestBadInput.
const maxLine = 1024

// TestBadInput sends lines the server must refuse, and checks that each
// gets an error reply, that the connection keeps working and that the
// running checks are left alone.
func TestBadInput(t *testing.T) {
	srv := startServer(t, serverOptions{MaxLineBytes: maxLine})
	up := startTCP(t, false)
	web := startHTTP(t, 200)
	good1 := tcpConfig(10, up.addr)
	good2 := httpConfig(12, web.addr, "")

	c := dial(t, srv.path)
	running := []uint64{10, 12}

	t.Run("one bad config among good ones", func(t *testing.T) {
		defer c.bind(t)()
		from := len(c.got)
		c.sendRaw(updateLine(t, good1,
			`{"id":11,"checker_type":"tcp","ip":"127.0.0.1","port":0}`, good2))
		e := reply[*messages.Error](c, from, "error reply")
		if e.ID == nil || *e.ID != 11 {
			t.Errorf("error id = %v, want 11 (%q)", e.ID, e.Message)
		}
		for _, want := range []string{"config 11", "port"} {
			if !strings.Contains(e.Message, want) {
				t.Errorf("error message = %q, want it to contain %q", e.Message, want)
			}
		}
		if got := ids(c.status()); !slices.Equal(got, running) {
			t.Errorf("status lists %v, want %v", got, running)
		}
		c.waitFirstNotes(0, running...)
	})

	t.Run("bad config without a readable id", func(t *testing.T) {
		defer c.bind(t)()
		from := len(c.got)
		c.sendRaw(updateLine(t, good1, `{"checker_type":"tcp"}`, good2))
		e := reply[*messages.Error](c, from, "error reply")
		if e.ID != nil {
			t.Errorf("error id = %d, want none (%q)", *e.ID, e.Message)
		}
		if want := "configs[1]"; !strings.Contains(e.Message, want) {
			t.Errorf("error message = %q, want it to contain %q", e.Message, want)
		}
	})

	t.Run("bad config of a running check keeps it", func(t *testing.T) {
		defer c.bind(t)()
		from := len(c.got)
		before, _ := statusOf(c.status(), 12)
		c.sendRaw(updateLine(t, good1,
			`{"id":12,"checker_type":"http","ip":"127.0.0.1","port":70000}`))
		e := reply[*messages.Error](c, from, "error reply")
		if e.ID == nil || *e.ID != 12 {
			t.Errorf("error id = %v, want 12 (%q)", e.ID, e.Message)
		}
		probing := func(st *messages.StatusResponse) bool {
			s, ok := statusOf(st, 12)
			return ok && s.State == healthy && s.Successes > before.Successes
		}
		c.waitStatus(waitTimeout, "check 12 to keep probing", probing)
	})

	tests := []struct {
		name    string
		line    string
		wantMsg string
	}{
		{
			name:    "malformed JSON",
			line:    `{"type": "request_status"` + "\n",
			wantMsg: "malformed line",
		},
		{
			name:    "not JSON",
			line:    "hello\n",
			wantMsg: "malformed line",
		},
		{
			name:    "unknown type",
			line:    `{"type":"make_coffee"}` + "\n",
			wantMsg: "unknown message type",
		},
		{
			name:    "missing type",
			line:    "{}\n",
			wantMsg: "missing message type",
		},
		{
			name:    "field of another type",
			line:    `{"type":"request_status","configs":[]}` + "\n",
			wantMsg: "does not belong",
		},
		{
			name:    "message only the server sends",
			line:    `{"type":"ready"}` + "\n",
			wantMsg: "unexpected message",
		},
		{
			name: "line over the limit",
			line: `{"type":"request_status","pad":"` +
				strings.Repeat("x", 2*maxLine) + `"}` + "\n",
			wantMsg: "line too long: over 1024 bytes (-max_line_bytes)",
		},
		{
			name:    "update without configs",
			line:    `{"type":"update_configs"}` + "\n",
			wantMsg: "configs: missing",
		},
		{
			name:    "update with null configs",
			line:    `{"type":"update_configs","configs":null}` + "\n",
			wantMsg: "configs: missing",
		},
		{
			name:    "configs not a list",
			line:    `{"type":"update_configs","configs":{"id":10}}` + "\n",
			wantMsg: "must be a list",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer c.bind(t)()
			from := len(c.got)
			c.sendRaw(tt.line)
			e := reply[*messages.Error](c, from, "error reply")
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("error message = %q, want it to contain %q", e.Message, tt.wantMsg)
			}
			if e.ID != nil {
				t.Errorf("error id = %d, want none", *e.ID)
			}

			// The connection still works, and no check was touched.
			if got := ids(c.status()); !slices.Equal(got, running) {
				t.Errorf("status lists %v, want %v", got, running)
			}
			for _, r := range c.got[from:] {
				e, ok := r.msg.(*messages.Error)
				if ok && !strings.Contains(e.Message, tt.wantMsg) {
					t.Errorf("unexpected extra error: %s", r.raw)
				}
			}
		})
	}

	t.Run("errors counted", func(t *testing.T) {
		var errs int
		for _, r := range c.got {
			if _, ok := r.msg.(*messages.Error); ok {
				errs++
			}
		}
		if got := srv.stats.LinesRejected.Load(); got != uint64(errs) {
			t.Errorf("LinesRejected = %d, want the %d errors received", got, errs)
		}
	})
}

// updateLine returns an update_configs line of configs, each either a
// messages.Config or raw JSON text.
func updateLine(t *testing.T, configs ...any) string {
	t.Helper()
	raws := make([]json.RawMessage, len(configs))
	for i, c := range configs {
		switch c := c.(type) {
		case string:
			raws[i] = json.RawMessage(c)
		case messages.Config:
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatalf("encoding config %d: %v", c.ID, err)
			}
			raws[i] = b
		default:
			panic(fmt.Sprintf("updateLine: %T", c))
		}
	}
	b, err := json.Marshal(map[string]any{"type": "update_configs", "configs": raws})
	if err != nil {
		t.Fatalf("encoding update: %v", err)
	}
	return string(b) + "\n"
}
