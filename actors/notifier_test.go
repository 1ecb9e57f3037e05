package actors

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lbhealth/hcsupervisor/messages"
)

func note(id uint64, msg string) *messages.CheckStatus {
	return &messages.CheckStatus{ID: id, Status: messages.Status{
		State: messages.StateHealthy, Message: msg,
	}}
}

func spawnNotifier(t *testing.T, sys *actor.ActorSystem, cfg NotifierConfig,
) *actor.PID {
	t.Helper()
	cfg.Logger = testLogger(t)
	pid, err := sys.Root.SpawnNamed(NewNotifier(cfg), "notifier-"+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func ids(b *messages.NotificationBatch) []uint64 {
	var out []uint64
	for _, n := range b.Notifications {
		out = append(out, n.ID)
	}
	return out
}

func TestNotifierSizeTriggeredBatches(t *testing.T) {
	sys := testSystem(t)
	s := newSink(t, sys)
	stats := &NotifierStats{}
	// A delay this long never fires during the test: only size flushes.
	n := spawnNotifier(t, sys, NotifierConfig{
		Sink: s.pid, BatchSize: 3, BatchDelay: time.Hour, Stats: stats,
	})
	defer stopActor(t, sys, n)

	for id := range uint64(7) {
		sys.Root.Send(n, note(id, "up"))
	}
	for i, want := range [][]uint64{{0, 1, 2}, {3, 4, 5}} {
		if got := ids(s.next(t)); !equalIDs(got, want) {
			t.Errorf("batch %d = %v, want %v", i, got, want)
		}
	}
	select {
	case b := <-s.batches:
		t.Errorf("unexpected early batch %v", ids(b))
	case <-time.After(50 * time.Millisecond):
	}

	// Stopping flushes the partial batch.
	stopActor(t, sys, n)
	if got, want := ids(s.next(t)), []uint64{6}; !equalIDs(got, want) {
		t.Errorf("flushed batch = %v, want %v", got, want)
	}
	if got := stats.Sent.Load(); got != 7 {
		t.Errorf("sent = %d, want 7", got)
	}
}

func TestNotifierDelayTriggeredBatch(t *testing.T) {
	sys := testSystem(t)
	s := newSink(t, sys)
	const delay = 50 * time.Millisecond
	n := spawnNotifier(t, sys, NotifierConfig{
		Sink: s.pid, BatchSize: 100, BatchDelay: delay,
	})
	defer stopActor(t, sys, n)

	start := time.Now()
	sys.Root.Send(n, note(1, "a"))
	sys.Root.Send(n, note(2, "b"))
	b := s.next(t)
	if got, want := ids(b), []uint64{1, 2}; !equalIDs(got, want) {
		t.Errorf("batch = %v, want %v", got, want)
	}
	if waited := time.Since(start); waited < delay {
		t.Errorf("batch sent after %v, before its delay of %v", waited, delay)
	}

	// The next notification starts a new delay.
	sys.Root.Send(n, note(3, "c"))
	if got, want := ids(s.next(t)), []uint64{3}; !equalIDs(got, want) {
		t.Errorf("second batch = %v, want %v", got, want)
	}
}

func TestNotifierCoalescesKeepingOrder(t *testing.T) {
	sys := testSystem(t)
	s := newSink(t, sys)
	stats := &NotifierStats{}
	n := spawnNotifier(t, sys, NotifierConfig{
		Sink: s.pid, BatchSize: 3, BatchDelay: time.Hour, Stats: stats,
	})
	defer stopActor(t, sys, n)

	sys.Root.Send(n, note(5, "first"))
	sys.Root.Send(n, note(9, "only"))
	sys.Root.Send(n, note(5, "second"))
	sys.Root.Send(n, &messages.NotificationBatch{Notifications: []messages.CheckStatus{
		*note(5, "newest"), *note(1, "last"),
	}})
	b := s.next(t)
	if got, want := ids(b), []uint64{5, 9, 1}; !equalIDs(got, want) {
		t.Fatalf("batch = %v, want %v", got, want)
	}
	if got := b.Notifications[0].Status.Message; got != "newest" {
		t.Errorf("coalesced message = %q, want %q", got, "newest")
	}
	if got := stats.Coalesced.Load(); got != 2 {
		t.Errorf("coalesced = %d, want 2", got)
	}
}

func TestNotifierCountsUndeliverable(t *testing.T) {
	sys := testSystem(t)
	deadSink := sys.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	stopActor(t, sys, deadSink)
	stats := &NotifierStats{}
	n := spawnNotifier(t, sys, NotifierConfig{
		Sink: deadSink, BatchSize: 1, Stats: stats,
	})
	defer stopActor(t, sys, n)

	// The Terminated for the dead sink arrives first: Watch of a dead PID
	// answers at once.
	waitFor(t, "the sink's death to be noticed", func() bool {
		sys.Root.Send(n, note(1, "x"))
		return stats.Undelivered.Load() > 0
	})
}

func equalIDs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The periodic full status passes at once, in batches of BatchSize marked
// Periodic, apart from the changes; a check with a change waiting takes
// the periodic status in the change's batch instead.
func TestNotifierPeriodicPassesThrough(t *testing.T) {
	sys := testSystem(t)
	s := newSink(t, sys)
	// A delay this long never fires during the test.
	n := spawnNotifier(t, sys, NotifierConfig{
		Sink: s.pid, BatchSize: 2, BatchDelay: time.Hour,
	})
	defer stopActor(t, sys, n)

	sys.Root.Send(n, note(3, "changed"))
	periodic := &messages.NotificationBatch{Periodic: true}
	for id := range uint64(6) {
		periodic.Notifications = append(periodic.Notifications, *note(id, "periodic"))
	}
	sys.Root.Send(n, periodic)

	for i, want := range [][]uint64{{0, 1}, {2, 4}, {5}} {
		b := s.next(t)
		if got := ids(b); !equalIDs(got, want) || !b.Periodic {
			t.Errorf("batch %d = %v periodic %t, want %v periodic", i, got, b.Periodic, want)
		}
	}
	stopActor(t, sys, n) // flushes the change's batch
	b := s.next(t)
	if got := ids(b); !equalIDs(got, []uint64{3}) || b.Periodic ||
		b.Notifications[0].Status.Message != "periodic" {
		t.Errorf("change batch = %+v, want check 3 with the newer periodic status, unmarked", b)
	}
}

// A periodic status older than a change the notifier has passed on is
// dropped: the Engine must not hear the old state after the new.
func TestNotifierDropsStalePeriodicStatus(t *testing.T) {
	sys := testSystem(t)
	s := newSink(t, sys)
	n := spawnNotifier(t, sys, NotifierConfig{
		Sink: s.pid, BatchSize: 2, BatchDelay: time.Hour,
	})
	defer stopActor(t, sys, n)

	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Second)
	at := func(id uint64, when time.Time, state messages.State) messages.CheckStatus {
		return messages.CheckStatus{ID: id, Status: messages.Status{
			State: state, LastCheck: when}}
	}
	c1, c2 := at(1, t1, messages.StateUnhealthy), at(2, t1, messages.StateHealthy)
	sys.Root.Send(n, &c1)
	sys.Root.Send(n, &c2)
	if got := ids(s.next(t)); !equalIDs(got, []uint64{1, 2}) {
		t.Fatalf("change batch = %v, want [1 2]", got)
	}

	// Read before check 1's change, delivered after it.
	sys.Root.Send(n, &messages.NotificationBatch{Periodic: true,
		Notifications: []messages.CheckStatus{
			at(1, t0, messages.StateHealthy),
			at(2, t1, messages.StateHealthy),
			at(3, t0, messages.StateHealthy),
		}})
	if got := ids(s.next(t)); !equalIDs(got, []uint64{2, 3}) {
		t.Errorf("periodic batch = %v, want [2 3]: check 1's status is older than its change", got)
	}
}
