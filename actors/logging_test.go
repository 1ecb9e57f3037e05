package actors

import (
	"bytes"
	"encoding/json"
	"log/slog"
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

func (b *syncBuffer) lines() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func TestLogsOneLinePerStateChangeAndNonePerProbe(t *testing.T) {
	var buf syncBuffer
	h := newManagerHarness(t, func(c *ManagerConfig) {
		c.Logger = zerolog.New(&buf).Level(zerolog.InfoLevel)
	})
	h.update(tcpConfig(1, 5*time.Millisecond))
	h.waitStates(t, messages.StateHealthy, 1)
	waitFor(t, "20 successful probes", func() bool {
		return h.statuses(t)[1].Successes >= 20
	})
	h.probers.setFail(1, true)
	h.waitStates(t, messages.StateUnhealthy, 1)

	var changes []map[string]any
	for _, line := range buf.lines() {
		switch line["message"] {
		case "probe_done":
			t.Fatalf("a per-probe line at info: %v", line)
		case "state_changed":
			changes = append(changes, line)
		}
	}
	if len(changes) != 2 {
		t.Fatalf("got %d state_changed lines, want 2 (unknown->healthy->unhealthy)",
			len(changes))
	}
	last := changes[1]
	for field, want := range map[string]any{
		"id": float64(1), "target": "127.0.0.1:9", "checker": "tcp",
		"old_state": "healthy", "new_state": "unhealthy",
		"result": "scripted failure",
	} {
		if last[field] != want {
			t.Errorf("state_changed %s = %v, want %v", field, last[field], want)
		}
	}
	if _, ok := last["duration"]; !ok {
		t.Errorf("state_changed lacks duration: %v", last)
	}
}
