package enginesim

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/bridge"
)

// testIDBase and testPingID fix the numbering of test servers.
const (
	testIDBase = 0x2A << 48
	testPingID = 7
)

// waitBound bounds a wait for a condition, generous for loaded -race runs.
const waitBound = 10 * time.Second

// socketPath returns a path for a unix socket in a new, short temporary
// directory: t.TempDir's paths can exceed the 108-byte limit of a socket
// path.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "es")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "engine.sock")
}

// testConfig returns a Config with the test numbering.
func testConfig() Config {
	return Config{IDBase: testIDBase, PingIDBase: testPingID}
}

// startServer returns a listening Server with cfg and its socket path; it
// is closed when the test ends.
func startServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	path := socketPath(t)
	s := New(cfg)
	if err := s.Listen(path); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

// setChecks sets checks on s and returns their IDs.
func setChecks(t *testing.T, s *Server, checks ...Check) []uint64 {
	t.Helper()
	u, err := s.SetChecks(checks)
	if err != nil {
		t.Fatalf("SetChecks: %v", err)
	}
	return u.IDs
}

// fetch returns the checks the Server at path serves, through the
// bridge's client.
func fetch(t *testing.T, path string) *bridge.Checks {
	t.Helper()
	checks, err := bridge.NewEngineClient(path, waitBound).
		Healthchecks(context.Background())
	if err != nil {
		t.Fatalf("Healthchecks: %v", err)
	}
	return checks
}

// waitFor waits for cond on s, failing the test after waitBound.
func waitFor(t *testing.T, s *Server, what string, cond func(*Snapshot) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	if err := s.WaitFor(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v; counts %+v", what, err, s.Counts())
	}
}

// boolPtr returns a pointer to b.
func boolPtr(b bool) *bool { return &b }
