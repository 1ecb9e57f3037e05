package bridge

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
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
		})
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
		})
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
