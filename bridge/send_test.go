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

// A state change does not wait for a call that carries the periodic
// status: it goes in a call of its own, unless that call carries the
// same check, whose change then follows it, so that the Engine ends
// with the newest status of every check.
func TestEdgeChangeDoesNotWaitBehindRefreshes(t *testing.T) {
	gate := make(chan struct{})
	engine := &heldEngine{hold: func(rpc string, n int) <-chan struct{} {
		if rpc == rpcState && n == 0 {
			return gate
		}
		return nil
	}}
	h := startEdge(t, engine, &fakeManager{}, nil)
	var open sync.Once
	release := func() { open.Do(func() { close(gate) }) }
	t.Cleanup(release)
	send := func(periodic bool, statuses ...messages.CheckStatus) {
		h.sys.Root.Send(h.edge, &messages.NotificationBatch{
			Notifications: statuses, Periodic: periodic,
		})
	}

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
	gate := make(chan struct{})
	engine := &heldEngine{
		hold: func(rpc string, n int) <-chan struct{} {
			if rpc == rpcState && n == 0 {
				return gate
			}
			return nil
		},
		fail: func(n int) bool { return n == 1 },
	}
	h := startEdge(t, engine, &fakeManager{}, func(c *EdgeConfig) {
		c.RetryDelay = time.Hour // a retry that waits would end the test
	})
	var open sync.Once
	release := func() { open.Do(func() { close(gate) }) }
	t.Cleanup(release)
	send := func(periodic bool, statuses ...messages.CheckStatus) {
		h.sys.Root.Send(h.edge, &messages.NotificationBatch{
			Notifications: statuses, Periodic: periodic,
		})
	}

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
