package actors

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

func TestServiceStopsWhenAChildDies(t *testing.T) {
	edgeStarted := make(chan *actor.PID, 1)
	edge := Edge{Name: "edge", Props: func(*actor.PID) *actor.Props {
		return actor.PropsFromFunc(func(c actor.Context) {
			if _, ok := c.Message().(*actor.Started); ok {
				edgeStarted <- c.Self()
			}
		})
	}}
	mcfg := DefaultManagerConfig()
	mcfg.NewProber = newFakeProbers().newProber
	mcfg.Logger = testLogger(t)
	svc, err := Start(ServiceConfig{
		Manager: mcfg, Edges: []Edge{edge}, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	pid := <-edgeStarted

	// As when the edge's supervisor gives up on it.
	if err := svc.System().Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-svc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the service did not stop after its edge died")
	}
	if err := svc.Err(); err == nil || !strings.Contains(err.Error(), "hc/edge") {
		t.Errorf("Err() = %v, want it to name the dead edge", err)
	}

	// Stop still works, twice.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 2 {
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}
}
