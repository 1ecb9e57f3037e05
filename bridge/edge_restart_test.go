package bridge

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// The RPC names heldEngine records calls under.
const (
	rpcFetch = "Healthchecks"
	rpcState = "HealthState"
)

// heldEngine is a fake Engine that holds calls until the test lets them
// go, and records when it handled each call.
type heldEngine struct {
	// hold returns what the n-th call (from 0) of rpc waits for before
	// it answers; nil answers at once.
	hold func(rpc string, n int) <-chan struct{}
	// fail, if set, says whether the n-th HealthState call fails.
	fail func(n int) bool

	mu       sync.Mutex
	spans    map[string][]span
	received []*Notification
}

// span is when the Engine handled one call; end is zero while it runs.
type span struct{ start, end time.Time }

// heldBound bounds a held call, should a test fail to let it go.
const heldBound = time.Minute

// Healthchecks answers with no checks.
func (e *heldEngine) Healthchecks(_ *Context, _ *Checks) error {
	e.handle(rpcFetch)
	return nil
}

// HealthState records the notifications.
func (e *heldEngine) HealthState(args *HealthState, _ *int) error {
	if n := e.handle(rpcState); e.fail != nil && e.fail(n) {
		return errors.New("test: this call fails")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.received = append(e.received, args.Notifications...)
	return nil
}

// handle records the call and holds it as told; it returns the call's
// number.
func (e *heldEngine) handle(rpc string) int {
	e.mu.Lock()
	if e.spans == nil {
		e.spans = make(map[string][]span)
	}
	n := len(e.spans[rpc])
	e.spans[rpc] = append(e.spans[rpc], span{start: time.Now()})
	e.mu.Unlock()

	if gate := e.hold(rpc, n); gate != nil {
		select {
		case <-gate:
		case <-time.After(heldBound):
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.spans[rpc][n].end = time.Now()
	return n
}

func (e *heldEngine) calls(rpc string) []span {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]span(nil), e.spans[rpc]...)
}

// receivedIDs returns the set of check IDs the Engine was told about.
func (e *heldEngine) receivedIDs() map[uint64]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make(map[uint64]bool)
	for _, n := range e.received {
		ids[n.Id] = true
	}
	return ids
}

// maxOverlap returns the most spans that ran at one moment.
func maxOverlap(spans []span) int {
	most := 0
	for _, s := range spans {
		n := 0
		for _, o := range spans {
			if !o.start.After(s.start) && (o.end.IsZero() || o.end.After(s.start)) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

func TestMaxOverlap(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, int64(ms)*1e6) }
	tests := []struct {
		name  string
		spans []span
		want  int
	}{
		{"none", nil, 0},
		{"in turn", []span{{at(0), at(10)}, {at(10), at(20)}, {at(30), at(40)}}, 1},
		{"nested", []span{{at(0), at(100)}, {at(10), at(20)}}, 2},
		{"running", []span{{at(0), time.Time{}}, {at(50), at(60)}, {at(70), at(80)}}, 2},
		{"three", []span{{at(0), at(50)}, {at(10), at(50)}, {at(20), at(30)}}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := maxOverlap(tt.spans); got != tt.want {
				t.Errorf("maxOverlap = %d, want %d", got, tt.want)
			}
		})
	}
}

// A restart during a fetch cancels it. Its outcome reaches the restarted
// bridge after that bridge began a fetch of its own, and must not count
// as that fetch's: else a retry and the next fetch both start, and the
// bridge fetches twice per interval from then on.
func TestEdgeRestartDuringFetchKeepsOneFetchAtATime(t *testing.T) {
	const interval = 200 * time.Millisecond
	first := make(chan struct{})
	engine := &heldEngine{hold: func(rpc string, n int) <-chan struct{} {
		if rpc == rpcFetch && n == 0 {
			return first
		}
		return nil
	}}
	h := startEdge(t, engine, &fakeManager{}, func(c *EdgeConfig) {
		c.FetchInterval = interval
		c.RetryDelay = interval / 20
	})
	t.Cleanup(func() { close(first) })

	waitUntil(t, "the first fetch", func() bool { return len(engine.calls(rpcFetch)) == 1 })
	h.sys.Root.Send(h.edge, &messages.Crash{Reason: "test: restart during a fetch"})
	const fetches = 6
	waitUntil(t, fmt.Sprintf("%d fetches after the restart", fetches), func() bool {
		return len(engine.calls(rpcFetch)) >= 1+fetches
	})

	// A fetch begins FetchInterval after the one before ended: timers
	// fire late under load, never early.
	after := engine.calls(rpcFetch)[1:]
	for i := 1; i < len(after); i++ {
		if gap := after[i].start.Sub(after[i-1].start); gap < interval/2 {
			t.Errorf("fetch %d began %v after the one before, want at least %v",
				i+1, gap, interval/2)
		}
	}
	if got := maxOverlap(after); got > 1 {
		t.Errorf("%d fetches in flight at once, want 1", got)
	}
	if got := h.stats.FetchErrors.Load(); got != 0 {
		t.Errorf("fetch errors = %d, want 0: a cancelled fetch is no Engine error", got)
	}
}

// A restart during a HealthState call cancels it. Its outcome reaches the
// restarted bridge after that bridge began a call of its own, and must
// not count as that call's: else a retry starts while it runs.
func TestEdgeRestartDuringHealthStateKeepsOneCallAtATime(t *testing.T) {
	const retry = 5 * time.Millisecond
	first, later := make(chan struct{}), make(chan struct{})
	engine := &heldEngine{hold: func(rpc string, n int) <-chan struct{} {
		switch {
		case rpc != rpcState:
			return nil
		case n == 0:
			return first
		}
		return later
	}}
	h := startEdge(t, engine, &fakeManager{}, func(c *EdgeConfig) {
		c.RetryDelay = retry
	})
	var letGo sync.Once
	releaseLater := func() { letGo.Do(func() { close(later) }) }
	t.Cleanup(func() { close(first); releaseLater() })
	batch := func(id uint64) *messages.NotificationBatch {
		return &messages.NotificationBatch{
			Notifications: []messages.CheckStatus{healthy(id, "up")},
		}
	}

	h.sys.Root.Send(h.edge, batch(1))
	waitUntil(t, "the first call", func() bool { return len(engine.calls(rpcState)) == 1 })
	// The batch lands behind the crash, before the cancelled call's
	// outcome, so the restarted bridge calls again before it sees that.
	h.sys.Root.Send(h.edge, &messages.Crash{Reason: "test: restart during a call"})
	h.sys.Root.Send(h.edge, batch(2))
	waitUntil(t, "a call after the restart", func() bool {
		return len(engine.calls(rpcState)) >= 2
	})

	// NOTE: this wait asserts nothing. It holds the call long enough for
	// a wrong retry, due RetryDelay after the restart, to begin; a right
	// bridge begins no call until this one ends.
	deadline := time.Now().Add(100 * retry)
	for len(engine.calls(rpcState)) < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	releaseLater()
	h.sys.Root.Send(h.edge, batch(3))
	waitUntil(t, "every status at the Engine", func() bool {
		ids := engine.receivedIDs()
		return ids[1] && ids[2] && ids[3]
	}, func() string { return fmt.Sprint(engine.receivedIDs()) })

	if got := maxOverlap(engine.calls(rpcState)[1:]); got > 1 {
		t.Errorf("%d HealthState calls in flight at once after the restart, want 1", got)
	}
}
