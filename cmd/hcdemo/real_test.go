package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRealBinaries runs the whole demo in each mode against the binaries
// in the repository's bin/, when they are built: real backends, the
// simulated Engine, and the real bridge, server and probes.
func TestRealBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binaries for seconds")
	}
	bin := filepath.Join("..", "..", "bin")
	server := filepath.Join(bin, "healthcheck-server")
	proxy := filepath.Join(bin, "healthcheck-proxy")
	for _, path := range []string{server, proxy} {
		if _, err := os.Stat(path); err != nil {
			t.Skipf("%s is not built (go build -o bin/ ./cmd/...): %v",
				path, err)
		}
	}

	pl := testPlan(t)
	// Every check but icmp-loopback, which needs CAP_NET_RAW or a
	// ping_group_range that holds the user to be healthy.
	want := map[string]string{
		"tcp-echo":          "healthy",
		"tcp-refused":       "unhealthy",
		"http-ok":           "healthy",
		"http-flap":         "healthy",
		"https-self-signed": "healthy",
		"dns-ok":            "healthy",
		"dns-wrong-ip":      "unhealthy",
		"udp-echo":          "healthy",
		"radius-ok":         "healthy",
		"tls-handshake":     "healthy",
	}
	for _, mode := range []string{modeInProcess, modeSplit, modeSocket} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			o := fastOptions(mode, server, proxy)
			o.FetchInterval = 100 * time.Millisecond
			// Early, so that the test waits for the changed set only.
			o.ChangeAfter = 300 * time.Millisecond
			out, stop := startRun(t, o)

			waitForChanges(t, out, names(pl.Changed()), want)
			if err := stop(); err != nil {
				t.Fatalf("run: %v", err)
			}
			got := out.String()
			if !strings.Contains(got, "status ") {
				t.Errorf("output lacks the final status:\n%s", got)
			}
			checkDirRemoved(t, got)
		})
	}
}
