package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// buildTimeout bounds building the real binaries: generous, for a cold
// build cache on a loaded 2-core machine.
const buildTimeout = 10 * time.Minute

// TestRealBinaries runs the whole demo in each mode against
// healthcheck-server and healthcheck-proxy built from this tree for the
// test: real backends, the simulated Engine, and the real bridge,
// server and probes. Only -short skips it.
func TestRealBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binaries for seconds")
	}
	server, proxy := buildBinaries(t)
	// Under -race a binary sleeps 1s at exit by default.
	t.Setenv("GORACE", "atexit_sleep_ms=0")

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

// buildBinaries builds healthcheck-server and healthcheck-proxy from
// this module into a directory of the test, with the race detector when
// the test binary has it, so that the build reuses what go test -race
// compiled and the binaries report races too.
func buildBinaries(t *testing.T) (server, proxy string) {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled() {
		args = append(args, "-race")
	}
	const module = "github.com/lbhealth/hcsupervisor/cmd/"
	args = append(args, module+"healthcheck-server", module+"healthcheck-proxy")

	t.Logf("go %s", strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return filepath.Join(dir, "healthcheck-server"),
		filepath.Join(dir, "healthcheck-proxy")
}

// goTool returns the go command on PATH, where go test puts its own.
func goTool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command on PATH: %v", err)
	}
	return path
}

// raceEnabled reports whether the running binary was built with -race.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}
