package bridge

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

// startSplit starts a split bridge in sys, linked to the server socket
// and fetching once an hour from the Engine socket engine.
func startSplit(t *testing.T, sys *actor.ActorSystem, server, engine string) *Split {
	t.Helper()
	logger := zerolog.New(zerolog.NewTestWriter(t))
	sp, err := StartSplit(sys,
		LinkConfig{Socket: server, Logger: logger},
		EdgeConfig{
			Engine:        NewEngineClient(engine, time.Second),
			FetchInterval: time.Hour,
			RetryDelay:    time.Hour,
			Logger:        logger,
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestSplitDiesWithItsEdge(t *testing.T) {
	sys := newTestSystem(t)
	defer sys.Shutdown()
	dir := t.TempDir()
	sp := startSplit(t, sys, filepath.Join(dir, "none.sock"),
		filepath.Join(dir, "e.sock"))
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
	sp := startSplit(t, sys, filepath.Join(dir, "none.sock"),
		filepath.Join(dir, "e.sock"))
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
	for i := range 20 {
		t.Run(strconv.Itoa(i), splitPassesOnTheFirstStatuses)
	}
}

func splitPassesOnTheFirstStatuses(t *testing.T) {
	engine := &fakeEngine{}
	server := serveStatusLines(t, [][]any{{&messages.StatusResponse{
		Statuses: []messages.CheckStatus{healthy(7, "up")},
	}}})
	sys := newTestSystem(t)
	defer sys.Shutdown()
	sp := startSplit(t, sys, server, serveRPC(t, "SeesawEngine", engine))
	defer sp.Stop()

	waitUntil(t, "the status sent on connect, in the Engine", func() bool {
		engine.mu.Lock()
		defer engine.mu.Unlock()
		return len(engine.received) == 1 && engine.received[0].Id == 7
	})
}
