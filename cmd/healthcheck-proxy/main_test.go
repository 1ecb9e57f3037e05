package main

import (
	"bytes"
	"flag"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-nope"}, "flag provided but not defined"},
		{"bad log level", []string{"-log_level", "loud"}, "-log_level"},
		{"bad log format", []string{"-log_format", "xml"}, "-log_format"},
		{"bad duration", []string{"-retry_delay", "soon"}, "retry_delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := run(tt.args, &stderr); got != 2 {
				t.Errorf("exit status = %d, want 2", got)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr = %q, want it to mention %q", stderr.String(), tt.want)
			}
		})
	}
}

// The flags shared with Seesaw's seesaw_healthcheck keep its defaults.
func TestFlagDefaults(t *testing.T) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("healthcheck-proxy", flag.ContinueOnError)
	cfg.register(fs)
	for name, want := range map[string]string{
		"engine_socket":        "/var/run/seesaw/engine/engine.sock",
		"server_socket":        "/var/run/seesaw/healthcheck-proxy.sock",
		"fetch_interval":       "15s",
		"retry_delay":          "2s",
		"max_failures":         "10",
		"exit_on_max_failures": "false",
	} {
		switch f := fs.Lookup(name); {
		case f == nil:
			t.Errorf("-%s is not defined", name)
		case f.DefValue != want:
			t.Errorf("-%s defaults to %q, want %q", name, f.DefValue, want)
		}
	}
}

// With -exit_on_max_failures the proxy exits with status 1 once
// -max_failures HealthState calls failed in a row.
func TestExitOnMaxFailures(t *testing.T) {
	dir := t.TempDir()
	server := serveNotification(t, filepath.Join(dir, "hc.sock"))
	var log lockedBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run([]string{
			"-engine_socket", filepath.Join(dir, "no-engine.sock"),
			"-server_socket", server, "-metrics_addr", "",
			"-max_failures", "2", "-retry_delay", "10ms",
			"-exit_on_max_failures",
		}, io.MultiWriter(zerolog.NewTestWriter(t), &log))
	}()
	select {
	case code := <-exited:
		if code != 1 {
			t.Errorf("exit status = %d, want 1", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the proxy did not exit")
	}
	// For the failed calls, not for any other failure.
	if got := log.String(); !strings.Contains(got, `"proxy_failed"`) ||
		!strings.Contains(got, "2 HealthState calls failed") {
		t.Errorf("log lacks proxy_failed for 2 failed HealthState calls:\n%s", got)
	}
}

// lockedBuffer is a buffer for the lines of concurrent loggers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveNotification serves a server's socket at path that says ready and
// sends one notification on every connection, then reads until the
// client leaves. It returns path.
func serveNotification(t *testing.T, path string) string {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	lines := `{"type":"ready"}` + "\n" +
		`{"type":"notification_batch","notifications":[{"id":1,"status":` +
		`{"state":"healthy","message":"up","last_check":` +
		`"2026-12-04T06:00:00Z","duration":"1ms"}}]}` + "\n"
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := conn.Write([]byte(lines)); err == nil {
					io.Copy(io.Discard, conn)
				}
			})
		}
	})
	return path
}
