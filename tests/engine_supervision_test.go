package tests

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lbhealth/hcsupervisor/actors"
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
	stats := &actors.FaultStats{}
	stack := startInProcess(t, sock, stackOptions{FaultStats: stats})
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
	// The crashes did happen: the bridge restarts after each, its
	// backoff growing with them (1.6s after the fifth).
	eventually(t, waitTimeout, "5 restarts of the bridge", func() bool {
		return stats.SingletonRestarts.Load() == 5
	})
}

// stallBackend answers each line with "+PONG" until it is stalled; then
// it holds new connections unanswered until it is released, when it
// answers them too, as a backend too busy to reply for a while does.
type stallBackend struct {
	addr     netip.AddrPort
	ln       net.Listener
	stalled  atomic.Bool
	released chan struct{}
	release  func()
	wg       sync.WaitGroup
}

// startStallBackend starts a stallBackend, answering; it is closed when
// the test ends.
func startStallBackend(t testing.TB) *stallBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	b := &stallBackend{
		addr: addrPort(t, ln.Addr()), ln: ln, released: make(chan struct{}),
	}
	b.release = sync.OnceFunc(func() { close(b.released) })
	b.wg.Go(b.accept)
	t.Cleanup(func() {
		b.release()
		ln.Close()
		b.wg.Wait()
	})
	return b
}

func (b *stallBackend) accept() {
	for {
		conn, err := b.ln.Accept()
		if err != nil {
			return
		}
		stalled := b.stalled.Load()
		b.wg.Go(func() { b.serve(conn, stalled) })
	}
}

func (b *stallBackend) serve(conn net.Conn, stalled bool) {
	defer conn.Close()
	if stalled {
		<-b.released
	}
	conn.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := bufio.NewReader(conn).ReadString('\n'); err == nil {
		io.WriteString(conn, "+PONG\r\n")
	}
}

// stallCheck returns an Engine check of b whose probes wait a minute for
// the answer: a stalled backend holds a probe for the whole test.
func stallCheck(id uint64, b *stallBackend) enginesim.Check {
	c := engineCheck("tcp", b.addr)
	c.ID = id
	c.Interval = 300 * time.Millisecond
	c.Timeout = time.Minute
	c.Send = "PING\r\n"
	c.Receive = "+PONG"
	return c
}

// TestWarmRestartEngineSeesNoTransition restarts a server of 1,000
// healthy checks while their backend stalls, so that no fresh probe can
// finish for a while. With a state file, the new server has every check
// healthy at once and the Engine hears nothing at all, not even when the
// fresh probes confirm. Without one (the contrast that shows the stall
// hides the truth), the checks are unknown until the backend answers,
// and the Engine hears their first verdicts, every one healthy.
func TestWarmRestartEngineSeesNoTransition(t *testing.T) {
	for _, withFile := range []bool{true, false} {
		name := "without state file"
		if withFile {
			name = "with state file"
		}
		t.Run(name, func(t *testing.T) {
			backend := startStallBackend(t)
			sim, sock := startEngine(t)
			var checks []enginesim.Check
			for i := range 1000 {
				checks = append(checks, stallCheck(uint64(i+1), backend))
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
			if withFile {
				if _, err := os.Stat(opts.StateFile); err != nil {
					t.Fatalf("state file after the stop: %v", err)
				}
			}

			backend.stalled.Store(true)
			restartedAt := time.Now()
			second := startInProcess(t, sock, opts)
			want := messages.StateUnknown
			if withFile {
				want = messages.StateHealthy
			}
			truth := second.waitTruth(t, "the Engine's checks in the new server",
				func(truth map[uint64]messages.Status) bool {
					return len(truth) == len(ids)
				})
			for id, st := range truth {
				if st.State != want || st.LastCheck.After(restartedAt) {
					t.Fatalf("check %d while no probe can finish: %v, "+
						"last probe %v; want %v from before the restart "+
						"at %v", id, st.State, st.LastCheck, want,
						restartedAt)
				}
			}

			backend.release()
			second.waitTruth(t, "a fresh verdict of every check",
				func(truth map[uint64]messages.Status) bool {
					for _, st := range truth {
						if st.State != messages.StateHealthy ||
							st.LastCheck.Before(restartedAt) {
							return false
						}
					}
					return true
				})
			if !withFile {
				waitEngine(t, sim, "the first verdicts",
					notifiedSince(restartedAt, ids...))
			}
			// Stopping flushes what the notifier and the bridge still
			// hold, so that nothing sent escapes the check below.
			stopCtx, stopCancel := context.WithTimeout(context.Background(), stopTimeout)
			defer stopCancel()
			if err := second.svc.Stop(stopCtx); err != nil {
				t.Fatalf("stopping the new server: %v", err)
			}
			for _, r := range sim.Received() {
				if !r.At.After(restartedAt) {
					continue
				}
				st := messages.State(r.Notification.Status.State)
				if withFile || st != messages.StateHealthy {
					t.Fatalf("after the restart the Engine heard %d is %v",
						r.Notification.Id, st)
				}
			}
		})
	}
}
