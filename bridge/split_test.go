package bridge

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

func TestSplitDiesWithItsEdge(t *testing.T) {
	sys := newTestSystem(t)
	defer sys.Shutdown()
	dir := t.TempDir()
	logger := zerolog.New(zerolog.NewTestWriter(t))
	sp, err := StartSplit(sys,
		LinkConfig{Socket: filepath.Join(dir, "none.sock"), Logger: logger},
		EdgeConfig{
			Engine:        NewEngineClient(filepath.Join(dir, "e.sock"), time.Second),
			FetchInterval: time.Hour,
			RetryDelay:    time.Hour,
			Logger:        logger,
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sp.Died():
		t.Fatal("Died closed while both actors run")
	default:
	}

	// As when its supervisor gives up on it.
	if err := sys.Root.StopFuture(sp.edge).Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sp.Died():
	case <-time.After(5 * time.Second):
		t.Fatal("Died not closed after the edge stopped")
	}
	if err := sp.Stop(); err == nil {
		t.Log("stop after the edge died succeeded")
	}
}

func TestSplitStopIsNotDeath(t *testing.T) {
	sys := newTestSystem(t)
	defer sys.Shutdown()
	dir := t.TempDir()
	logger := zerolog.New(zerolog.NewTestWriter(t))
	sp, err := StartSplit(sys,
		LinkConfig{Socket: filepath.Join(dir, "none.sock"), Logger: logger},
		EdgeConfig{
			Engine:        NewEngineClient(filepath.Join(dir, "e.sock"), time.Second),
			FetchInterval: time.Hour,
			RetryDelay:    time.Hour,
			Logger:        logger,
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sp.Died():
		t.Error("Died closed by a requested stop")
	default:
	}
}

// What the server sends as soon as the link connects reaches the Engine:
// the link connects only once the edge exists. Repeated, because the
// link and the edge start in the same instant.
func TestSplitPassesOnTheFirstStatuses(t *testing.T) {
	for range 20 {
		splitPassesOnTheFirstStatuses(t)
	}
}

func splitPassesOnTheFirstStatuses(t *testing.T) {
	engine := &fakeEngine{}
	server := serveStatusLines(t, [][]any{{&messages.StatusResponse{
		Statuses: []messages.CheckStatus{healthy(7, "up")},
	}}})
	sys := newTestSystem(t)
	defer sys.Shutdown()
	logger := zerolog.New(zerolog.NewTestWriter(t))
	sp, err := StartSplit(sys,
		LinkConfig{Socket: server, Logger: logger},
		EdgeConfig{
			Engine: NewEngineClient(
				serveRPC(t, "SeesawEngine", engine), time.Second),
			FetchInterval: time.Hour,
			RetryDelay:    time.Hour,
			Logger:        logger,
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop()

	waitUntil(t, "the status sent on connect, in the Engine", func() bool {
		engine.mu.Lock()
		defer engine.mu.Unlock()
		return len(engine.received) == 1 && engine.received[0].Id == 7
	})
}
