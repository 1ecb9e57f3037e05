package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/messages"
)

// lockedBuffer is a bytes.Buffer that is safe for concurrent use, for a
// printer whose engine prints from RPC goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Lines returns the lines written so far, and forgets them.
func (l *lockedBuffer) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return lines(&l.b)
}

// startTestEngine returns an engine serving pl's initial checks on a
// socket, numbering them from idBase, and the bridge's client of that
// socket. The engine is closed at cleanup.
func startTestEngine(
	t *testing.T, pl demoPlan, idBase uint64,
) (*engine, *lockedBuffer, *bridge.EngineClient) {
	t.Helper()
	// t.TempDir() can exceed the 108-byte limit of a socket path.
	dir, err := os.MkdirTemp("", "hcdemo-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	out := &lockedBuffer{}
	p := newPrinter(out, false, pl.All())
	p.now = func() time.Time { return testNow }
	e := newEngine(p, idBase)
	if err := e.Serve(pl.Initial); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "engine.sock")
	if err := e.Listen(socket); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e, out, bridge.NewEngineClient(socket, waitTimeout)
}

func TestEngineServesAndNamesChecks(t *testing.T) {
	pl := testPlan(t)
	const base = 7 << 48
	e, out, client := startTestEngine(t, pl, base)

	if e.Fetched() {
		t.Error("Fetched before any fetch")
	}
	checks, err := client.Healthchecks(context.Background())
	if err != nil {
		t.Fatalf("Healthchecks: %v", err)
	}
	if !e.Fetched() {
		t.Error("not Fetched after a fetch")
	}
	configs, rejected := bridge.ToConfigs(checks)
	if len(configs) != len(pl.Initial) || rejected != nil {
		t.Fatalf("fetched %d configs and rejected %v, want %d and none",
			len(configs), rejected, len(pl.Initial))
	}

	// The bridge reports tcp-echo, the Engine's first check.
	echo := healthy(configs[:1])
	if err := client.HealthState(context.Background(), echo); err != nil {
		t.Fatalf("HealthState: %v", err)
	}
	checkLines(t, "notification", out.Lines(), []string{
		engineLine("tcp-echo", "tcp 127.0.0.1:1", "unknown -> healthy",
			"fake: tcp 127.0.0.1:1"),
	})

	statuses := e.Statuses()
	if len(statuses) != len(pl.Initial) {
		t.Fatalf("Statuses: got %d, want %d", len(statuses), len(pl.Initial))
	}
	if got := statuses[0]; got.ID != base ||
		got.Status.State != messages.StateHealthy {
		t.Errorf("Statuses[0]: got %+v, want %d healthy", got, uint64(base))
	}
	if got := statuses[1].Status; got.State != messages.StateUnknown ||
		got.Message != "no notification received" {
		t.Errorf("Statuses[1]: got %+v, want unknown, never notified", got)
	}
}

func TestEngineChange(t *testing.T) {
	pl := testPlan(t)
	e, out, client := startTestEngine(t, pl, 7<<48)
	before, err := e.Configs()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serve(pl.Changed()); err != nil {
		t.Fatal(err)
	}
	after, err := e.Configs()
	if err != nil {
		t.Fatal(err)
	}

	// Unchanged checks keep their IDs; the new one gets a new ID.
	removed := before[3] // http-503
	for i := range after[:len(after)-1] {
		if after[i].ID == removed.ID {
			t.Errorf("removed check's ID %d still served", removed.ID)
		}
	}
	added := after[len(after)-1]
	if added.ID <= before[len(before)-1].ID {
		t.Errorf("added check's ID %d, want a new one", added.ID)
	}

	// A late notification of the removed check is ignored, and says so.
	err = client.HealthState(context.Background(), append(
		healthy([]messages.Config{removed}), healthy(after[len(after)-1:])...))
	if err != nil {
		t.Fatalf("HealthState: %v", err)
	}
	checkLines(t, "after the change", out.Lines(), []string{
		engineLine("http-503", "http GET /healthz 127.0.0.1:4", "healthy",
			"ignored, not served: fake: http GET /healthz 127.0.0.1:4"),
		engineLine("tls-handshake", "tls 127.0.0.1:6", "unknown -> healthy",
			"fake: tcp 127.0.0.1:6"),
	})
}

// engineLine returns a line of the test plan's printer without its time:
// its columns fit https-self-signed and its description.
func engineLine(name, desc, change, text string) string {
	return fmt.Sprintf("  %-17s  %-30s  %-22s  %s", name, desc, change, text)
}
