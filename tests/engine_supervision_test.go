package tests

import (
	"context"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
)

// crashBridge injects panics into the in-process bridge through the
// tree's root, as an inject_fault line does.
func crashBridge(t *testing.T, s *engineStack, count int) {
	t.Helper()
	svc := s.service()
	root := actor.NewPID(svc.System().Address(), "hc")
	res, err := svc.System().Root.RequestFuture(root, &messages.InjectFault{
		Actor: messages.ActorBridge, Fault: messages.FaultPanic, Count: count,
	}, waitTimeout).Result()
	if err != nil {
		t.Fatalf("crash the bridge: %v", err)
	}
	if _, ok := res.(*messages.Ack); !ok {
		t.Fatalf("crash the bridge: answered %#v", res)
	}
}

func TestBridgeCrashesLoseNothing(t *testing.T) {
	sim, sock := startEngine(t)
	var backends []*httpBackend
	var checks []enginesim.Check
	for range 20 {
		b := startHTTP(t, http.StatusOK)
		backends = append(backends, b)
		checks = append(checks, engineCheck("http", b.addr))
	}
	ids := setEngineChecks(t, sim, checks...)
	stack := startInProcess(t, sock, stackOptions{})
	healthy := make(map[uint64]messages.State)
	for _, id := range ids {
		healthy[id] = messages.StateHealthy
	}
	waitEngine(t, sim, "every check healthy", statesAre(healthy))

	// Flip backends while the bridge crashes again and again.
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 40 {
		b := backends[rng.IntN(len(backends))]
		if b.code.Load() == http.StatusOK {
			b.setCode(http.StatusInternalServerError)
		} else {
			b.setCode(http.StatusOK)
		}
		if i%8 == 0 {
			crashBridge(t, stack, 1)
		}
		time.Sleep(15 * time.Millisecond) // NOTE: paces the load; asserts nothing.
	}

	want := make(map[uint64]messages.State)
	for i, id := range ids {
		want[id] = messages.StateHealthy
		if backends[i].code.Load() != http.StatusOK {
			want[id] = messages.StateUnhealthy
		}
	}
	stack.waitTruth(t, "the server to see every backend", truthStatesAre(want))
	waitEngine(t, sim, "the Engine to hold the truth", statesAre(want))
}

// TestWarmRestartEngineSeesNoTransition restarts a server of 1,000
// healthy checks, with and without a state file: the Engine hears
// nothing but "healthy" from the new server.
func TestWarmRestartEngineSeesNoTransition(t *testing.T) {
	for _, withFile := range []bool{true, false} {
		name := "without state file"
		if withFile {
			name = "with state file"
		}
		t.Run(name, func(t *testing.T) {
			backend := startTCP(t, false)
			sim, sock := startEngine(t)
			var checks []enginesim.Check
			for i := range 1000 {
				c := engineCheck("tcp", backend.addr)
				c.ID = uint64(i + 1)
				c.Interval = 300 * time.Millisecond
				checks = append(checks, c)
			}
			ids := setEngineChecks(t, sim, checks...)
			healthy := make(map[uint64]messages.State)
			for _, id := range ids {
				healthy[id] = messages.StateHealthy
			}
			opts := stackOptions{}
			if withFile {
				opts.StateFile = filepath.Join(t.TempDir(), "state.json")
			}

			first := startInProcess(t, sock, opts)
			waitEngine(t, sim, "1,000 checks healthy", statesAre(healthy))
			ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			defer cancel()
			if err := first.svc.Stop(ctx); err != nil {
				t.Fatal(err)
			}

			restartedAt := time.Now()
			second := startInProcess(t, sock, opts)
			second.waitTruth(t, "a fresh probe of every check",
				func(truth map[uint64]messages.Status) bool {
					if len(truth) != len(ids) {
						return false
					}
					for _, st := range truth {
						if st.LastCheck.Before(restartedAt) {
							return false
						}
					}
					return true
				})
			for _, r := range sim.Received() {
				if r.At.After(restartedAt) &&
					messages.State(r.Notification.Status.State) != messages.StateHealthy {
					t.Fatalf("after the restart the Engine heard %d is %v",
						r.Notification.Id, messages.State(r.Notification.Status.State))
				}
			}
		})
	}
}
