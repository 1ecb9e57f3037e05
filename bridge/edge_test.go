package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

// fakeManager stands in for the supervision tree's manager: it records
// updates, answers them with ConfigsApplied or, while hold is set, keeps
// their askers in held, and answers status requests with statuses.
type fakeManager struct {
	mu       sync.Mutex
	updates  []*messages.UpdateConfigs
	statuses []messages.CheckStatus
	// order lists the messages received, "update" or "status".
	order []string
	hold  bool
	held  []*actor.PID
}

func (m *fakeManager) receive(c actor.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch msg := c.Message().(type) {
	case *messages.UpdateConfigs:
		m.order = append(m.order, "update")
		m.updates = append(m.updates, msg)
		switch {
		case c.Sender() == nil:
		case m.hold:
			m.held = append(m.held, c.Sender())
		default:
			c.Respond(&messages.ConfigsApplied{})
		}
	case *messages.RequestStatus:
		m.order = append(m.order, "status")
		c.Respond(&messages.StatusResponse{Statuses: m.statuses})
	}
}

func (m *fakeManager) setStatuses(statuses []messages.CheckStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.statuses = statuses
}

func (m *fakeManager) received() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.order)
}

// release answers the held updates from root and stops holding.
func (m *fakeManager) release(root *actor.RootContext) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, asker := range m.held {
		root.Send(asker, &messages.ConfigsApplied{})
	}
	m.held, m.hold = nil, false
}

func (m *fakeManager) lastUpdate() *messages.UpdateConfigs {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.updates) == 0 {
		return nil
	}
	return m.updates[len(m.updates)-1]
}

func (m *fakeManager) updateCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.updates)
}

// edgeHarness runs the bridge against a fake Engine and a fake manager.
type edgeHarness struct {
	sys     *actor.ActorSystem
	engine  *fakeEngine
	manager *fakeManager
	edge    *actor.PID
	stats   *EdgeStats
}

func newEdgeHarness(t *testing.T, tune func(*EdgeConfig)) *edgeHarness {
	t.Helper()
	engine := &fakeEngine{checks: goldenChecks(t)}
	h := startEdge(t, engine, &fakeManager{}, tune)
	h.engine = engine
	return h
}

// startEdge runs the bridge against the Engine service rcvr and manager;
// the harness's engine is left nil.
func startEdge(t *testing.T, rcvr any, manager *fakeManager,
	tune func(*EdgeConfig)) *edgeHarness {

	t.Helper()
	h := &edgeHarness{
		sys:     newTestSystem(t),
		manager: manager,
		stats:   &EdgeStats{},
	}
	socket := serveRPC(t, "SeesawEngine", rcvr)
	cfg := EdgeConfig{
		Engine:        NewEngineClient(socket, 2*time.Second),
		FetchInterval: time.Hour,
		RetryDelay:    10 * time.Millisecond,
		MaxFailures:   3,
		MaxBackoff:    40 * time.Millisecond,
		Stats:         h.stats,
		Logger:        zerolog.New(zerolog.NewTestWriter(t)),
	}
	if tune != nil {
		tune(&cfg)
	}
	managerPID := h.sys.Root.Spawn(actor.PropsFromFunc(h.manager.receive))
	h.edge = h.sys.Root.Spawn(NewEdge(cfg)(managerPID))
	t.Cleanup(func() {
		h.sys.Root.StopFuture(h.edge).Wait()
		h.sys.Root.StopFuture(managerPID).Wait()
		h.sys.Shutdown()
	})
	return h
}

// newTestSystem returns an actor system that logs into the test's output.
func newTestSystem(t *testing.T) *actor.ActorSystem {
	logger := zerolog.New(zerolog.NewTestWriter(t))
	return actor.NewActorSystem(actor.WithLoggerFactory(
		func(*actor.ActorSystem) *slog.Logger {
			return slog.New(zerolog.NewSlogHandler(logger))
		}))
}

// goldenChecks returns the 19 configs Seesaw's Engine sent in the capture.
func goldenChecks(t *testing.T) map[uint64]*Config {
	t.Helper()
	return decodeGoldenChecks(t, "healthchecks-reply.gob").Configs
}

func (h *edgeHarness) received() []*Notification {
	h.engine.mu.Lock()
	defer h.engine.mu.Unlock()
	return append([]*Notification(nil), h.engine.received...)
}

func (h *edgeHarness) setEngineErr(err error) {
	h.engine.mu.Lock()
	h.engine.err = err
	h.engine.mu.Unlock()
}

// waitUntil polls cond until it holds, failing the test after a deadline
// with what, and the output of the optional show.
func waitUntil(t *testing.T, what string, cond func() bool, show ...func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, f := range show {
				what += ": " + f()
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// statusSecond0 is when the probes of statusAt start counting.
var statusSecond0 = time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)

// statusAt returns check id's status in state after a probe sec seconds
// after statusSecond0.
func statusAt(id uint64, state messages.State, sec int) messages.CheckStatus {
	return messages.CheckStatus{ID: id, Status: messages.Status{
		State: state, LastCheck: statusSecond0.Add(time.Duration(sec) * time.Second),
	}}
}

func healthy(id uint64, msg string) messages.CheckStatus {
	return messages.CheckStatus{ID: id, Status: messages.Status{
		State: messages.StateHealthy, Message: msg,
	}}
}

func TestEdgeFetchesAndConverts(t *testing.T) {
	h := newEdgeHarness(t, nil)
	waitUntil(t, "the first update", func() bool { return h.manager.lastUpdate() != nil })

	u := h.manager.lastUpdate()
	wantConfigs, wantRejected := ToConfigs(&Checks{Configs: goldenChecks(t)})
	if len(u.Configs) != len(wantConfigs) || len(u.Rejected) != len(wantRejected) {
		t.Fatalf("update has %d configs and %d rejected, want %d and %d",
			len(u.Configs), len(u.Rejected), len(wantConfigs), len(wantRejected))
	}
	for _, rej := range u.Rejected {
		if !rej.HasID || wantRejected[rej.ID] == nil {
			t.Errorf("rejected %v, want one of the unconvertible IDs", rej)
		}
	}
	if got := h.stats.Fetches.Load(); got != 1 {
		t.Errorf("fetches = %d, want 1", got)
	}
}

func TestEdgeRetriesFailedFetch(t *testing.T) {
	h := newEdgeHarness(t, nil)
	h.setEngineErr(errors.New("engine busy"))
	waitUntil(t, "an update after the Engine recovers", func() bool {
		if h.stats.FetchErrors.Load() >= 2 {
			h.setEngineErr(nil)
		}
		return h.manager.updateCount() > 0
	})
}

func TestEdgeSendsNotifications(t *testing.T) {
	h := newEdgeHarness(t, nil)
	h.sys.Root.Send(h.edge, &messages.NotificationBatch{
		Notifications: []messages.CheckStatus{healthy(1, "a"), healthy(2, "b")},
	})
	waitUntil(t, "two notifications", func() bool { return len(h.received()) == 2 })
	got := h.received()
	if got[0].Id != 1 || got[1].Id != 2 || got[0].Status.Message != "a" {
		t.Errorf("received %+v, %+v; want ids 1 and 2 in order", got[0], got[1])
	}
}

func TestEdgeKeepsNewestStatesThroughOutage(t *testing.T) {
	var alarms atomic.Int32
	h := newEdgeHarness(t, func(c *EdgeConfig) {
		c.OnMaxFailures = func(error) { alarms.Add(1) }
	})
	// The manager's statuses are the truth after the outage, including
	// check 7, whose change the bridge never saw.
	h.manager.setStatuses([]messages.CheckStatus{
		healthy(1, "3rd"), healthy(2, "3rd"), healthy(7, "from manager"),
		{ID: 8}, // unknown: never sent
	})
	h.setEngineErr(errors.New("engine down"))

	// States change while the Engine is down; only the newest per check
	// may reach it.
	for _, msg := range []string{"1st", "2nd", "3rd"} {
		h.sys.Root.Send(h.edge, &messages.NotificationBatch{
			Notifications: []messages.CheckStatus{healthy(1, msg), healthy(2, msg)},
		})
	}
	waitUntil(t, "the alarm", func() bool { return h.stats.Unreachable.Load() })
	waitUntil(t, "failures past the limit", func() bool {
		return h.stats.HealthStateErr.Load() >= 5
	})
	h.setEngineErr(nil)

	waitUntil(t, "recovery and the full status", func() bool {
		got := make(map[uint64]string)
		for _, n := range h.received() {
			got[n.Id] = n.Status.Message
		}
		return got[1] == "3rd" && got[2] == "3rd" && got[7] == "from manager"
	}, func() string { return fmt.Sprint(h.received()) })
	for _, n := range h.received() {
		if n.Id == 8 {
			t.Error("a status in state unknown reached the Engine")
		}
	}
	if got := alarms.Load(); got != 1 {
		t.Errorf("OnMaxFailures called %d times, want 1", got)
	}
	if h.stats.Unreachable.Load() {
		t.Error("still marked unreachable after recovery")
	}
}

func TestEdgeFlushesOnStop(t *testing.T) {
	h := newEdgeHarness(t, func(c *EdgeConfig) {
		c.RetryDelay = time.Second
	})
	h.setEngineErr(errors.New("engine down"))
	h.sys.Root.Send(h.edge, &messages.NotificationBatch{
		Notifications: []messages.CheckStatus{healthy(5, "last words")},
	})
	waitUntil(t, "a failed call", func() bool { return h.stats.HealthStateErr.Load() > 0 })
	h.setEngineErr(nil)

	// The retry waits a second; stopping sends at once.
	if err := h.sys.Root.StopFuture(h.edge).Wait(); err != nil {
		t.Fatal(err)
	}
	got := h.received()
	if len(got) != 1 || got[0].Id != 5 {
		t.Errorf("received %v, want check 5's status", got)
	}
}

// The bridge records that configs are applied only once the manager
// answered the update with ConfigsApplied, and asks for no status to
// learn it.
func TestEdgeConfirmsAppliedConfigs(t *testing.T) {
	engine := &fakeEngine{checks: goldenChecks(t)}
	h := startEdge(t, engine, &fakeManager{hold: true}, nil)
	waitUntil(t, "an update", func() bool {
		return len(h.manager.received()) >= 1
	})

	if h.stats.LastFetch.Load() == 0 {
		t.Error("LastFetch is zero after a good fetch")
	}
	if got := h.stats.LastApplied.Load(); got != 0 {
		t.Fatalf("LastApplied = %d before the manager answered, want 0", got)
	}

	answered := time.Now().UnixNano()
	h.manager.release(h.sys.Root)
	waitUntil(t, "LastApplied", func() bool { return h.stats.LastApplied.Load() != 0 })
	if got := h.stats.LastApplied.Load(); got < answered {
		t.Errorf("LastApplied = %d, before the manager answered at %d", got, answered)
	}
	for _, m := range h.manager.received() {
		if m == "status" {
			t.Error("the bridge asked for every status to confirm a config set")
		}
	}
}

func TestStatusQueue(t *testing.T) {
	q := newStatusQueue()
	q.add([]messages.CheckStatus{healthy(1, "a"), healthy(2, "a"), healthy(1, "b")})
	taken := batchOf(q.take(1, 1, nil))
	if len(taken) != 1 || taken[0].ID != 1 || taken[0].Status.Message != "b" {
		t.Fatalf("take = %v, want check 1 with its newest status", taken)
	}
	q.add([]messages.CheckStatus{healthy(1, "c")})
	q.putBack(taken, 0)
	q.addOlder([]messages.CheckStatus{healthy(2, "old"), healthy(3, "old")})

	var got []string
	for _, cs := range batchOf(q.take(10, 10, nil)) {
		got = append(got, cs.Status.Message)
	}
	// Check 1's newer "c" survives the put-back of "b"; 2 keeps "a".
	want := []string{"a", "c", "old"}
	if len(got) != len(want) {
		t.Fatalf("queue = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("queue = %v, want %v", got, want)
			break
		}
	}
	if q.len() != 0 {
		t.Errorf("len = %d after taking all, want 0", q.len())
	}
}

// Changes go before refreshes, whatever their order of arrival; each
// check waits once, with its newest status, a change staying a change.
func TestStatusQueueChangesFirst(t *testing.T) {
	q := newStatusQueue()
	q.addRefresh([]messages.CheckStatus{healthy(1, "r1"), healthy(2, "r2"),
		healthy(3, "r3"), healthy(4, "r4")})
	q.add([]messages.CheckStatus{healthy(3, "c3"), healthy(5, "c5")})
	q.addRefresh([]messages.CheckStatus{healthy(5, "r5")}) // newer, still a change
	q.addOlder([]messages.CheckStatus{healthy(1, "old"), healthy(6, "o6")})

	messagesOf := func(batch []messages.CheckStatus) []string {
		var out []string
		for _, cs := range batch {
			out = append(out, cs.Status.Message)
		}
		return out
	}
	got := messagesOf(batchOf(q.take(3, 3, nil)))
	if want := []string{"c3", "r5", "r1"}; !slices.Equal(got, want) {
		t.Errorf("first take = %v, want %v", got, want)
	}
	q.add([]messages.CheckStatus{healthy(4, "c4")})
	got = messagesOf(batchOf(q.take(10, 10, nil)))
	if want := []string{"c4", "r2", "o6"}; !slices.Equal(got, want) {
		t.Errorf("second take = %v, want %v", got, want)
	}
	if q.len() != 0 {
		t.Errorf("len = %d after taking all, want 0", q.len())
	}

	// Refreshes fill a batch only up to their own bound.
	q.addRefresh([]messages.CheckStatus{healthy(7, "r7"), healthy(8, "r8")})
	q.add([]messages.CheckStatus{healthy(9, "c9"), healthy(10, "c10")})
	got = messagesOf(batchOf(q.take(10, 3, nil)))
	if want := []string{"c9", "c10", "r7"}; !slices.Equal(got, want) {
		t.Errorf("bounded take = %v, want %v", got, want)
	}
}

// A snapshot loses the statuses older than one passed on while it was
// pending, and its unknown and unconfirmed ones; the guard notes nothing while no
// snapshot is pending, and forgets once the last one is answered.
func TestSnapshotGuard(t *testing.T) {
	idsOf := func(batch []messages.CheckStatus) []uint64 {
		var out []uint64
		for _, cs := range batch {
			out = append(out, cs.ID)
		}
		return out
	}
	snapshot := []messages.CheckStatus{
		statusAt(1, messages.StateHealthy, 5),
		statusAt(2, messages.StateHealthy, 5),
		statusAt(3, messages.StateUnknown, 0),
		statusAt(4, messages.StateUnhealthy, 5),
		{ID: 5, Status: messages.Status{State: messages.StateHealthy,
			LastCheck: statusSecond0, Unconfirmed: true}},
	}

	var g snapshotGuard
	g.passed([]messages.CheckStatus{statusAt(1, messages.StateUnhealthy, 9)})
	g.asked()
	g.passed([]messages.CheckStatus{
		statusAt(2, messages.StateUnhealthy, 6), // newer: 2 is dropped
		statusAt(4, messages.StateHealthy, 5),   // as old: 4 stays
	})
	g.asked()
	if got, want := idsOf(g.answered(nil)), []uint64(nil); !slices.Equal(got, want) {
		t.Errorf("a failed snapshot = %v, want %v", got, want)
	}
	if got, want := idsOf(g.answered(snapshot)), []uint64{1, 4}; !slices.Equal(got, want) {
		t.Errorf("the snapshot = %v, want %v", got, want)
	}

	// None pending: a snapshot answered late keeps every known status.
	g.passed([]messages.CheckStatus{statusAt(1, messages.StateUnhealthy, 9)})
	if got, want := idsOf(g.answered(snapshot)), []uint64{1, 2, 4}; !slices.Equal(got, want) {
		t.Errorf("a snapshot after the last = %v, want %v", got, want)
	}
	g.asked()
	g.passed([]messages.CheckStatus{statusAt(1, messages.StateUnhealthy, 9)})
	g.cancel()
	if g.pending != 0 || g.seen != nil {
		t.Errorf("after cancel: %d pending, %d seen; want none", g.pending, len(g.seen))
	}
}

// batchOf returns the statuses statusQueue.take returns.
func batchOf(batch []messages.CheckStatus, _ int) []messages.CheckStatus {
	return batch
}
