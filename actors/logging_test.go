package actors

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/rs/zerolog"
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
