package bridge

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// lastStatus returns the message of the last status the Engine heard of
// each check.
func (e *heldEngine) lastStatus() map[uint64]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[uint64]string)
	for _, n := range e.received {
		out[n.Id] = n.Status.Message
	}
	return out
}

// heldStateCalls holds the HealthState calls whose numbers (from 0) it
// is made with until the test releases them (each once, and all at the
// test's end).
type heldStateCalls struct {
	gates map[int]chan struct{}
	once  map[int]*sync.Once
}

func holdStateCalls(t *testing.T, calls ...int) *heldStateCalls {
	hs := &heldStateCalls{gates: make(map[int]chan struct{}),
		once: make(map[int]*sync.Once)}
	for _, n := range calls {
		hs.gates[n], hs.once[n] = make(chan struct{}), &sync.Once{}
	}
	t.Cleanup(func() {
		for _, n := range calls {
			hs.release(n)
		}
	})
	return hs
}

// hold is heldEngine.hold.
func (hs *heldStateCalls) hold(rpc string, n int) <-chan struct{} {
	if rpc != rpcState {
		return nil
	}
	if gate, ok := hs.gates[n]; ok {
		return gate
	}
	return nil
}

func (hs *heldStateCalls) release(n int) {
	hs.once[n].Do(func() { close(hs.gates[n]) })
}

// notify sends the edge statuses, as the manager's notifier would.
func (h *edgeHarness) notify(periodic bool, statuses ...messages.CheckStatus) {
	h.sys.Root.Send(h.edge, &messages.NotificationBatch{
		Notifications: statuses, Periodic: periodic,
	})
}

// A state change does not wait for a call that carries the periodic
// status: it goes in a call of its own, unless that call carries the
// same check, whose change then follows it, so that the Engine ends
// with the newest status of every check.
func TestEdgeChangeDoesNotWaitBehindRefreshes(t *testing.T) {
	held := holdStateCalls(t, 0)
	engine := &heldEngine{hold: held.hold}
	h := startEdge(t, engine, &fakeManager{}, nil)
	release := func() { held.release(0) }
	send := h.notify

	send(true, healthy(1, "refresh 1"), healthy(2, "refresh 2"))
	waitUntil(t, "the refresh call", func() bool {
		return len(engine.calls(rpcState)) == 1
	})
	send(false, healthy(3, "change 3"))
	waitUntil(t, "the change beside the held refresh call", func() bool {
		return engine.lastStatus()[3] == "change 3"
	})

	// Check 1's change waits for the call that holds check 1; check 4's
	// goes at once, so the two go in different calls.
	send(false, healthy(1, "change 1"), healthy(4, "change 4"))
	waitUntil(t, "check 4's change", func() bool {
		return engine.lastStatus()[4] == "change 4"
	})
	if msg, ok := engine.lastStatus()[1]; ok {
		t.Errorf("the Engine heard %q of check 1 while its refresh was held", msg)
	}

	release()
	waitUntil(t, "check 1's change after its refresh", func() bool {
		return engine.lastStatus()[1] == "change 1"
	})
	if got := engine.lastStatus()[2]; got != "refresh 2" {
		t.Errorf("check 2: the Engine heard %q, want %q", got, "refresh 2")
	}
	// Nothing is left pending once the Engine has it all.
	waitUntil(t, "no statuses pending", func() bool {
		return h.stats.Pending.Load() == 0
	})
}

// A queue take leaves the checks it is told are busy queued, in their
// place.
func TestStatusQueueTakeSkipsBusy(t *testing.T) {
	q := newStatusQueue()
	q.add([]messages.CheckStatus{healthy(1, "c1"), healthy(2, "c2"),
		healthy(3, "c3")})
	q.addRefresh([]messages.CheckStatus{healthy(4, "r4"), healthy(5, "r5")})
	busy := func(id uint64) bool { return id == 2 || id == 4 }

	batch, refreshes := q.take(10, 10, busy)
	var got []uint64
	for _, cs := range batch {
		got = append(got, cs.ID)
	}
	if want := []uint64{1, 3, 5}; !slices.Equal(got, want) || refreshes != 1 {
		t.Errorf("take = %v with %d refreshes, want %v with 1", got, refreshes, want)
	}
	batch, refreshes = q.take(10, 10, nil)
	got = got[:0]
	for _, cs := range batch {
		got = append(got, cs.ID)
	}
	if want := []uint64{2, 4}; !slices.Equal(got, want) || refreshes != 1 {
		t.Errorf("second take = %v with %d refreshes, want %v with 1",
			got, refreshes, want)
	}
}

// When one call fails while the other is in flight and that one then
// succeeds, the Engine answers: the failed batch and what came since go
// at once, not after the retry delay.
func TestEdgeRetriesAtOnceWhenTheOtherCallSucceeds(t *testing.T) {
	held := holdStateCalls(t, 0)
	engine := &heldEngine{
		hold: held.hold,
		fail: func(n int) bool { return n == 1 },
	}
	h := startEdge(t, engine, &fakeManager{}, func(c *EdgeConfig) {
		c.RetryDelay = time.Hour // a retry that waits would end the test
	})
	release := func() { held.release(0) }
	send := h.notify

	send(true, healthy(1, "refresh 1"))
	waitUntil(t, "the refresh call", func() bool {
		return len(engine.calls(rpcState)) == 1
	})
	send(false, healthy(2, "change 2")) // the rush call, which fails
	waitUntil(t, "the failed call", func() bool {
		return h.stats.HealthStateErr.Load() == 1
	})
	release()
	waitUntil(t, "the failed change, sent again", func() bool {
		return engine.lastStatus()[2] == "change 2"
	})
}

// A batch that fails again after the retry the other call's success let
// go at once waits out the retry delay, however the other call does, and
// its failures count: a batch the Engine cannot take is not sent again
// each time another call succeeds.
func TestEdgeRetriesAtOnceOnlyAfterTheFirstFailedRound(t *testing.T) {
	// Calls 0 and 2 carry refresh 1 and fail; calls 1 and 3 carry the
	// changes beside them, and succeed after them.
	held := holdStateCalls(t, 0, 1, 2, 3)
	engine := &heldEngine{
		hold: held.hold,
		fail: func(n int) bool { return n == 0 || n == 2 },
	}
	h := startEdge(t, engine, &fakeManager{}, func(c *EdgeConfig) {
		c.RetryDelay = time.Hour
		c.MaxFailures = 3
	})
	calls := func(n int) func() bool {
		return func() bool { return len(engine.calls(rpcState)) == n }
	}

	h.notify(true, healthy(1, "refresh 1"))
	waitUntil(t, "the refresh call", calls(1))
	h.notify(false, healthy(2, "change 2"))
	waitUntil(t, "the change's call", calls(2))
	held.release(0)
	waitUntil(t, "the failed refresh call", func() bool {
		return h.stats.HealthStateErr.Load() == 1
	})
	held.release(1)
	waitUntil(t, "the refresh, sent again at once", calls(3))

	h.notify(false, healthy(3, "change 3"))
	waitUntil(t, "the second change's call", calls(4))
	held.release(2)
	waitUntil(t, "the second failed refresh call", func() bool {
		return h.stats.HealthStateErr.Load() == 2
	})
	held.release(3)
	waitUntil(t, "the second change", func() bool {
		return engine.lastStatus()[3] == "change 3"
	})
	time.Sleep(200 * time.Millisecond)
	if n := len(engine.calls(rpcState)); n != 4 {
		t.Errorf("%d HealthState calls, want 4: the refresh went again "+
			"without waiting out its retry", n)
	}
	if n := h.stats.Pending.Load(); n != 1 {
		t.Errorf("pending = %d, want 1: the refresh, kept for its retry", n)
	}
}

// A batch put back after a failed call keeps its refreshes in the
// refresh lane, so a later take still bounds them and counts them.
func TestStatusQueuePutBackKeepsLanes(t *testing.T) {
	q := newStatusQueue()
	q.add([]messages.CheckStatus{healthy(1, "c1")})
	q.addRefresh([]messages.CheckStatus{healthy(2, "r2"), healthy(3, "r3")})
	batch, refreshes := q.take(10, 10, nil)
	if len(batch) != 3 || refreshes != 2 {
		t.Fatalf("take = %d statuses with %d refreshes, want 3 with 2",
			len(batch), refreshes)
	}
	q.putBack(batch, refreshes)
	// Refreshes fill a batch up to 2 statuses: the change and one of them.
	if batch, refreshes = q.take(10, 2, nil); len(batch) != 2 || refreshes != 1 {
		t.Errorf("take after the put-back = %d statuses with %d refreshes, "+
			"want 2 with 1 (the bound)", len(batch), refreshes)
	}
}
