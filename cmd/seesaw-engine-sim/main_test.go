package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitBound bounds a wait for a condition, generous for loaded -race runs.
const waitBound = 10 * time.Second

// TestRunFlags checks the exit status and message of bad invocations.
func TestRunFlags(t *testing.T) {
	invalid := writeChecks(t, "checks.json", `{"checks": [{"type": "tcp"}]}`)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no config", nil, 2, "-config: missing"},
		{"unknown flag", []string{"-bogus"}, 2, "flag provided but not defined"},
		{"log format", []string{"-config", invalid, "-log_format", "xml"}, 2,
			"-log_format: want json or console"},
		{"log level", []string{"-config", invalid, "-log_level", "loud"}, 2,
			`-log_level: unknown level "loud"`},
		{"arguments", []string{"-config", invalid, "extra"}, 2,
			"unexpected arguments"},
		{"empty socket", []string{"-config", invalid, "-socket", ""}, 2,
			"-socket: missing"},
		{"invalid file", []string{"-config", invalid, "-log_format", "json"}, 1,
			"check 0: ip: missing"},
		{"missing file", []string{"-config", invalid + ".none.json"}, 1,
			"no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(tt.args, &stdout, &stderr); got != tt.code {
				t.Errorf("run = %d, want %d; stderr:\n%s", got, tt.code, &stderr)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", &stderr, tt.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
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

// waitForText polls b until it contains want, failing the test after
// waitBound.
func waitForText(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q in:\n%s", want, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeChecks writes content to a checks file named name in a new,
// short directory and returns its path.
func writeChecks(t *testing.T, name, content string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "es")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// replaceFile replaces path with content the way many editors do: write
// a new file, then rename it over the old one.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
