package actors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

func TestSlogLoggerWritesIntoZerolog(t *testing.T) {
	var buf bytes.Buffer
	logger := NewSlogLogger(zerolog.New(&buf).Level(zerolog.InfoLevel)).
		With("system", "s1")

	logger.Info("[DeadLetter]", slog.String("message", "payload text"))
	logger.Info(recoveringMessage, slog.String("reason", "boom"))
	logger.Debug("hidden")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1 (the crash line is debug):\n%s",
			len(lines), buf.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"level": "info", "message": "[DeadLetter]",
		"payload": "payload text", "system": "s1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("field %s = %v, want %v (line %s)", k, got[k], v, lines[0])
		}
	}
}

func TestSlogLoggerKeepsCrashLineAtDebug(t *testing.T) {
	var buf bytes.Buffer
	logger := NewSlogLogger(zerolog.New(&buf).Level(zerolog.DebugLevel))
	logger.Info(recoveringMessage, slog.String("reason", "boom"))
	if !strings.Contains(buf.String(), `"level":"debug"`) {
		t.Errorf("crash line = %s, want it at debug", buf.String())
	}
}

// teeLogger returns an info-level logger that writes to the test's output
// and to the returned buffer.
func teeLogger(t *testing.T) (*syncBuffer, zerolog.Logger) {
	t.Helper()
	lines := &syncBuffer{}
	w := zerolog.MultiLevelWriter(zerolog.NewTestWriter(t), lines)
	return lines, zerolog.New(w).Level(zerolog.InfoLevel)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// containing returns the buffer's lines that contain part, without
// their newlines.
func (b *syncBuffer) containing(part string) []string {
	var out []string
	for line := range strings.Lines(b.String()) {
		if strings.Contains(line, part) {
			out = append(out, strings.TrimSuffix(line, "\n"))
		}
	}
	return out
}

// lines returns the buffer's lines as JSON objects, failing the test on
// a line that is not one.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// byMessage returns the lines with the given message, and fails the test
// on any line whose message is not in allowed.
func byMessage(t *testing.T, lines []map[string]any, want string,
	allowed ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range lines {
		msg, _ := line["message"].(string)
		switch {
		case msg == want:
			out = append(out, line)
		case !slices.Contains(allowed, msg):
			t.Errorf("unexpected line at %v: %v", line["level"], line)
		}
	}
	return out
}

// checkFields checks the fields of a log line against want.
func checkFields(t *testing.T, line map[string]any, want map[string]any) {
	t.Helper()
	for field, v := range want {
		if line[field] != v {
			t.Errorf("%v %s = %v, want %v", line["message"], field,
				line[field], v)
		}
	}
}

// TestLogsOneLinePerStateChangeAndNonePerProbe checks that a check
// logs nothing at info or above while its probes succeed, and one
// state_changed line with what an operator needs per change.
func TestLogsOneLinePerStateChangeAndNonePerProbe(t *testing.T) {
	const probes = 20
	var buf syncBuffer
	h := newManagerHarness(t, func(c *ManagerConfig) {
		c.Logger = zerolog.New(&buf).Level(zerolog.InfoLevel)
	})
	h.update(tcpConfig(1, 5*time.Millisecond))
	h.waitStates(t, messages.StateHealthy, 1)
	waitFor(t, "successful probes", func() bool {
		return h.statuses(t)[1].Successes >= probes
	})
	h.probers.setFail(1, true)
	h.waitStates(t, messages.StateUnhealthy, 1)

	// The level is info, so every line is at info or above: the config
	// set's and the two changes', nothing for the probes between.
	lines := buf.lines(t)
	applied := byMessage(t, lines, "configs_applied", "state_changed")
	if len(applied) != 1 {
		t.Errorf("got %d configs_applied lines, want 1", len(applied))
	}
	changes := byMessage(t, lines, "state_changed", "configs_applied")
	if len(changes) != 2 {
		t.Fatalf("got %d state_changed lines, want 2 "+
			"(unknown->healthy->unhealthy):\n%v", len(changes), lines)
	}
	for i, want := range []map[string]any{
		{"old_state": "unknown", "new_state": "healthy",
			"result": "scripted success"},
		{"old_state": "healthy", "new_state": "unhealthy",
			"result": "scripted failure"},
	} {
		maps.Copy(want, map[string]any{"level": "info", "id": float64(1),
			"target": "127.0.0.1:9", "checker": "tcp"})
		checkFields(t, changes[i], want)
		if d, ok := changes[i]["duration"].(float64); !ok || d < 0 {
			t.Errorf("state_changed duration = %v, want a number of ms",
				changes[i]["duration"])
		}
	}
}

// TestLogsOneLinePerConfigSet checks that a config set is summarised in
// one configs_applied line with its counts, and logs nothing per check
// but state changes; a set that changes nothing is not logged at info.
func TestLogsOneLinePerConfigSet(t *testing.T) {
	var buf syncBuffer
	h := newManagerHarness(t, func(c *ManagerConfig) {
		c.Logger = zerolog.New(&buf).Level(zerolog.InfoLevel)
	})
	h.update(configs([]uint64{1, 2, 3}, time.Hour)...)
	changed := tcpConfig(2, 2*time.Hour)
	invalid := fmt.Errorf("%w: port: must be 1-65535", messages.ErrInvalidConfig)
	h.sys.Root.Send(h.pid, &messages.UpdateConfigs{
		Configs: []messages.Config{
			tcpConfig(1, time.Hour), changed, tcpConfig(4, time.Hour),
		},
		Rejected: []*messages.ConfigError{
			{Index: 3, ID: 5, HasID: true, Err: invalid},
			{Index: 4, Err: invalid},
		},
	})
	waitFor(t, "two configs_applied lines", func() bool {
		return strings.Count(buf.String(), `"configs_applied"`) == 2
	})
	// The same set again, its rejected configs included, as the Engine
	// sends it every fetch, changes nothing and is not logged at info;
	// the request after it is answered once the manager has handled it.
	h.sys.Root.Send(h.pid, &messages.UpdateConfigs{
		Configs: []messages.Config{
			tcpConfig(1, time.Hour), changed, tcpConfig(4, time.Hour),
		},
		Rejected: []*messages.ConfigError{{Index: 3, ID: 5, HasID: true, Err: invalid}},
	})
	h.statuses(t)
	// The checks handle their part of the set after the manager; a
	// request to each, answered in mailbox order, waits for it.
	for _, id := range []uint64{1, 2, 4} {
		if !h.checkAlive(id) {
			t.Fatalf("check %d is not running", id)
		}
	}
	waitFor(t, "check 3 gone", func() bool { return !h.checkAlive(3) })

	applied := byMessage(t, buf.lines(t), "configs_applied", "state_changed")
	if len(applied) != 2 {
		t.Fatalf("got %d configs_applied lines, want 2", len(applied))
	}
	checkFields(t, applied[0], map[string]any{"level": "info",
		"added": float64(3), "updated": float64(0), "unchanged": float64(0),
		"removed": float64(0), "rejected": float64(0), "checks": float64(3)})
	checkFields(t, applied[1], map[string]any{"level": "info",
		"added": float64(1), "updated": float64(1), "unchanged": float64(1),
		"removed": float64(1), "rejected": float64(2), "checks": float64(3)})
}

// TestNewLogger checks the log formats: JSON lines, or with console
// lines for people, uncoloured when not on a terminal.
func TestNewLogger(t *testing.T) {
	tests := []struct {
		format string
		// want are regular expressions the line must match, and not
		// those it must not.
		want, not []string
	}{
		{format: "json",
			want: []string{`^\{"level":"info","id":7,"checker":"tcp",` +
				`"time":"[^"]+","message":"state_changed"\}\n$`}},
		{format: "console",
			want: []string{`^\d\d:\d\d:\d\d INF state_changed ` +
				`checker=tcp id=7\n$`},
			not: []string{`\x1b\[`, `[{}"]`}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			logger, err := NewLogger(&buf, tt.format, "info")
			if err != nil {
				t.Fatal(err)
			}
			logger.Debug().Msg("hidden")
			logger.Info().Uint64("id", 7).Str("checker", "tcp").
				Msg("state_changed")
			got := buf.String()
			for _, re := range tt.want {
				if !regexp.MustCompile(re).MatchString(got) {
					t.Errorf("line %q does not match %s", got, re)
				}
			}
			for _, re := range tt.not {
				if regexp.MustCompile(re).MatchString(got) {
					t.Errorf("line %q matches %s", got, re)
				}
			}
		})
	}
}

func TestNewLoggerErrors(t *testing.T) {
	tests := []struct {
		format, level, want string
	}{
		{"xml", "info", `-log_format: want json or console, got "xml"`},
		{"json", "loud", `-log_level: unknown level "loud"`},
		{"json", "", `-log_level: unknown level ""`},
	}
	for _, tt := range tests {
		t.Run(tt.format+"/"+tt.level, func(t *testing.T) {
			_, err := NewLogger(io.Discard, tt.format, tt.level)
			if err == nil || err.Error() != tt.want {
				t.Errorf("NewLogger(%q, %q) = %v, want %s", tt.format,
					tt.level, err, tt.want)
			}
		})
	}
}
