package actors

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/lbhealth/hcsupervisor/messages"
)

func TestMain(m *testing.M) {
	// NOTE: the actor library throttles dead-letter logging with a
	// goroutine that lives one throttle period (1s) after a dead letter and
	// may be logging when checked, hence any function on its stack. It
	// ends by itself and is owned by the library.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction(
		"github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// testSystem returns an actor system logging into the test's output.
func testSystem(t *testing.T) *actor.ActorSystem {
	t.Helper()
	sys := NewSystem(testLogger(t))
	t.Cleanup(sys.Shutdown)
	return sys
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

// sink collects the notification batches sent to its actor.
type sink struct {
	pid     *actor.PID
	batches chan *messages.NotificationBatch
}

func newSink(t *testing.T, sys *actor.ActorSystem) *sink {
	t.Helper()
	s := &sink{batches: make(chan *messages.NotificationBatch, 10000)}
	s.pid = sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if b, ok := c.Message().(*messages.NotificationBatch); ok {
			s.batches <- b
		}
	}))
	t.Cleanup(func() { stopActor(t, sys, s.pid) })
	return s
}

// next returns the next batch, failing the test after a deadline.
func (s *sink) next(t *testing.T) *messages.NotificationBatch {
	t.Helper()
	select {
	case b := <-s.batches:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no notification batch within 10s")
		return nil
	}
}

// waitNote reads batches until one holds a notification that matches,
// failing the test with what if none does within 15s.
func (s *sink) waitNote(t *testing.T, what string, match func(messages.CheckStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if slices.ContainsFunc(s.next(t).Notifications, match) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// stopActor stops pid and waits for it to be gone.
func stopActor(t *testing.T, sys *actor.ActorSystem, pid *actor.PID) {
	t.Helper()
	if err := sys.Root.StopFuture(pid).Wait(); err != nil {
		t.Errorf("stop %s: %v", pid.Id, err)
	}
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeProbers hands out probers whose results the test controls per ID
// and which count their runs.
type fakeProbers struct {
	mu      sync.Mutex
	fail    map[uint64]bool
	runs    map[uint64]*atomic.Int64
	built   atomic.Int64
	overlap atomic.Bool
	// delay, if set, makes every probe take that long (or until its
	// context ends).
	delay time.Duration
	// panics makes every probe panic.
	panics bool
}

func newFakeProbers() *fakeProbers {
	return &fakeProbers{
		fail: make(map[uint64]bool),
		runs: make(map[uint64]*atomic.Int64),
	}
}

func (f *fakeProbers) setFail(id uint64, fail bool) {
	f.mu.Lock()
	f.fail[id] = fail
	f.mu.Unlock()
}

func (f *fakeProbers) runCount(id uint64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.runs[id]; ok {
		return r.Load()
	}
	return 0
}

func (f *fakeProbers) newProber(cfg *messages.Config) (Prober, error) {
	f.built.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.runs[cfg.ID] == nil {
		f.runs[cfg.ID] = &atomic.Int64{}
	}
	return &fakeProber{f: f, id: cfg.ID, runs: f.runs[cfg.ID]}, nil
}

type fakeProber struct {
	f      *fakeProbers
	id     uint64
	runs   *atomic.Int64
	active atomic.Int32
}

func (p *fakeProber) Probe(ctx context.Context) messages.ProbeResult {
	if p.active.Add(1) > 1 {
		p.f.overlap.Store(true)
	}
	defer p.active.Add(-1)
	p.runs.Add(1)
	if p.f.panics {
		panic("scripted panic")
	}
	if p.f.delay > 0 {
		select {
		case <-time.After(p.f.delay):
		case <-ctx.Done():
			return messages.ProbeResult{Message: "timed out"}
		}
	}
	p.f.mu.Lock()
	fail := p.f.fail[p.id]
	p.f.mu.Unlock()
	if fail {
		return messages.ProbeResult{Message: "scripted failure"}
	}
	return messages.ProbeResult{Success: true, Message: "scripted success"}
}
