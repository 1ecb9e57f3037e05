package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lbhealth/hcsupervisor/messages"
)

// fastRestarts makes crashed checks restart within milliseconds.
func fastRestarts(c *ManagerConfig) {
	c.RestartBackoffMin = time.Millisecond
	c.RestartBackoffMax = 20 * time.Millisecond
}

// ask sends msg to pid and returns the answer, failing the test on a
// timeout or an Error answer.
func (h *managerHarness) ask(t *testing.T, pid *actor.PID, msg any) any {
	t.Helper()
	res, err := h.sys.Root.RequestFuture(pid, msg, 10*time.Second).Result()
	if err != nil {
		t.Fatalf("ask %T: %v", msg, err)
	}
	if e, ok := res.(*messages.Error); ok {
		t.Fatalf("ask %T: %s", msg, e.Message)
	}
	return res
}

func (h *managerHarness) inject(t *testing.T, id uint64, f messages.Fault, n int) {
	t.Helper()
	h.ask(t, h.pid, &messages.InjectFault{ID: id, Fault: f, Count: n})
}

func (h *managerHarness) checkPID(id uint64) *actor.PID {
	return actor.NewPID(h.pid.Address, h.pid.Id+"/"+strconv.FormatUint(id, 10))
}

func TestCheckRestartKeepsStateAndCounters(t *testing.T) {
	stats := &FaultStats{}
	h := newManagerHarness(t, func(c *ManagerConfig) {
		fastRestarts(c)
		c.FaultStats = stats
	})
	h.update(tcpConfig(1, 10*time.Millisecond))
	h.waitStates(t, messages.StateHealthy, 1)
	before := h.statuses(t)[1]

	h.inject(t, 1, messages.FaultPanic, 1)
	waitFor(t, "the restart and more probes", func() bool {
		st := h.statuses(t)[1]
		return st.Restarts == 1 && st.Successes > before.Successes+2
	})
	if got := h.statuses(t)[1].State; got != messages.StateHealthy {
		t.Errorf("state after one restart = %v, want healthy", got)
	}
	if got := stats.CheckRestarts.Load(); got != 1 {
		t.Errorf("restarts counted = %d, want 1", got)
	}
	if got := stats.Injected(messages.FaultPanic); got != 1 {
		t.Errorf("injected panics counted = %d, want 1", got)
	}
	// The restart alone sent nothing: the only change notified is the
	// first result.
	changes := 0
	for _, b := range drainSink(h.sink) {
		if !b.Periodic {
			changes += len(b.Notifications)
		}
	}
	if changes != 1 {
		t.Errorf("%d state changes notified, want 1: the first result", changes)
	}
}

func TestCrashLoopIsUnhealthyUntilCleared(t *testing.T) {
	lines, logger := teeLogger(t)
	h := newLoggedHarness(t, logger, fastRestarts)
	h.update(tcpConfig(1, 5*time.Millisecond))
	h.waitStates(t, messages.StateHealthy, 1)

	h.inject(t, 1, messages.FaultPanic, 1000)
	h.waitStates(t, messages.StateUnhealthy, 1)
	st := h.statuses(t)[1]
	const want = "check keeps crashing: injected fault: panic"
	if st.Message != want {
		t.Errorf("message = %q, want %q", st.Message, want)
	}
	// The change is logged as a probe's change is.
	var changes []map[string]any
	for _, line := range lines.lines(t) {
		if line["message"] == "state_changed" {
			changes = append(changes, line)
		}
	}
	if len(changes) != 2 {
		t.Fatalf("got %d state_changed lines, want 2", len(changes))
	}
	checkFields(t, changes[1], map[string]any{"level": "info",
		"id": float64(1), "checker": "tcp", "target": "127.0.0.1:9",
		"old_state": "healthy", "new_state": "unhealthy", "result": want})

	h.ask(t, h.pid, &messages.ClearFaults{ID: 1})
	h.waitStates(t, messages.StateHealthy, 1)
	if got := h.statuses(t)[1].Restarts; got < crashLoopCrashes {
		t.Errorf("restarts = %d, want at least %d", got, crashLoopCrashes)
	}
}

func TestRestartBackoffDoubles(t *testing.T) {
	lo, hi := 100*time.Millisecond, time.Second
	for n, want := range map[int]time.Duration{
		1: lo, 2: 2 * lo, 3: 4 * lo, 4: 8 * lo, 5: hi, 50: hi,
	} {
		if got := restartBackoff(n, lo, hi); got != want {
			t.Errorf("restartBackoff(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestProbeFaults(t *testing.T) {
	tests := []struct {
		fault messages.Fault
		// want lists the messages of the faulty probes in order.
		want []string
	}{
		{messages.FaultError, []string{"injected fault: error"}},
		{messages.FaultFlap, []string{
			"injected fault: flap: failure", "injected fault: flap: success",
			"injected fault: flap: failure",
		}},
		{messages.FaultHang, []string{"injected fault: hang: held past the timeout"}},
		{messages.FaultSlow, []string{"scripted success"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.fault), func(t *testing.T) {
			h := newManagerHarness(t, nil)
			c := tcpConfig(1, 10*time.Millisecond)
			c.Timeout = 40 * time.Millisecond
			h.update(c)
			h.waitStates(t, messages.StateHealthy, 1)

			before := h.statuses(t)[1]
			h.inject(t, 1, tt.fault, len(tt.want))
			var got []string
			last := before.LastCheck
			waitFor(t, "the faulty probes", func() bool {
				st := h.statuses(t)[1]
				if st.LastCheck.After(last) {
					last = st.LastCheck
					if len(got) > 0 || st.Message != "scripted success" ||
						tt.fault == messages.FaultSlow {
						got = append(got, st.Message)
					}
				}
				return len(got) >= len(tt.want)
			})
			if strings.Join(got[:len(tt.want)], "|") != strings.Join(tt.want, "|") {
				t.Errorf("probe messages = %q, want %q", got, tt.want)
			}
			h.waitStates(t, messages.StateHealthy, 1)
		})
	}
}

func TestHangingProbeDoesNotBlockTheCheck(t *testing.T) {
	h := newManagerHarness(t, nil)
	c := tcpConfig(1, 100*time.Millisecond)
	c.Timeout = 2 * time.Second
	h.update(c)
	h.waitStates(t, messages.StateHealthy, 1)

	h.inject(t, 1, messages.FaultHang, 1)
	// For 300ms, well inside the 2s hang that starts within 100ms, the
	// check answers every status request at once.
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
		start := time.Now()
		res := h.ask(t, h.checkPID(1), &messages.RequestStatus{})
		if waited := time.Since(start); waited > time.Second {
			t.Fatalf("status took %v while the probe hung", waited)
		}
		if cs, ok := res.(*messages.CheckStatus); !ok || cs.ID != 1 {
			t.Fatalf("status = %#v, want check 1's", res)
		}
	}
	// The timeout fails the check, a state change the sink is told at once;
	// the next probe, up to 100ms later, would overwrite it in the status,
	// and in the notifier's batch had it come within the 5ms batch delay.
	const want = "injected fault: hang: held past the timeout"
	h.sink.waitNote(t, "the hang's timeout result", func(n messages.CheckStatus) bool {
		return n.ID == 1 && n.Status.Message == want
	})
}

func TestNotifierCrashKeepsBatch(t *testing.T) {
	h := newManagerHarness(t, func(c *ManagerConfig) {
		c.BatchDelay = time.Hour
		c.BatchSize = 1000
	})
	h.update(configs(idRange(1, 5), 10*time.Millisecond)...)
	h.waitStates(t, messages.StateHealthy, idRange(1, 5)...)

	h.ask(t, h.pid, &messages.InjectFault{
		Actor: messages.ActorNotifier, Fault: messages.FaultPanic, Count: 1,
	})
	seen := make(map[uint64]bool)
	for len(seen) < 5 {
		for _, n := range h.sink.next(t).Notifications {
			seen[n.ID] = true
		}
	}
}

func TestInjectFaultUnknownCheck(t *testing.T) {
	h := newManagerHarness(t, nil)
	res, err := h.sys.Root.RequestFuture(h.pid,
		&messages.InjectFault{ID: 42, Fault: messages.FaultError, Count: 1},
		10*time.Second).Result()
	e, ok := res.(*messages.Error)
	if err != nil || !ok || !strings.Contains(e.Message, "no check with id 42") {
		t.Errorf("answer = %#v, %v; want an error naming check 42", res, err)
	}
}

// startRecorder records when each check's probes start.
type startRecorder struct {
	mu     sync.Mutex
	starts map[uint64][]time.Time
}

func (r *startRecorder) newProber(cfg *messages.Config) (Prober, error) {
	id := cfg.ID
	return proberFunc(func(context.Context) messages.ProbeResult {
		r.mu.Lock()
		r.starts[id] = append(r.starts[id], time.Now())
		r.mu.Unlock()
		return messages.ProbeResult{Success: true, Message: "ok"}
	}), nil
}

// worst returns, for each check that keep accepts, how far its gap
// between two probe starts strayed most from interval, over the gaps
// within [from, to).
func (r *startRecorder) worst(keep func(uint64) bool, from, to time.Time,
	interval time.Duration) map[uint64]time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[uint64]time.Duration)
	for id, starts := range r.starts {
		if !keep(id) {
			continue
		}
		for i := 1; i < len(starts); i++ {
			if starts[i-1].Before(from) || !starts[i].Before(to) {
				continue
			}
			d := starts[i].Sub(starts[i-1]) - interval
			out[id] = max(out[id], d, -d)
		}
	}
	return out
}

type proberFunc func(context.Context) messages.ProbeResult

func (f proberFunc) Probe(ctx context.Context) messages.ProbeResult { return f(ctx) }

func worstOf(m map[uint64]time.Duration) time.Duration {
	var w time.Duration
	for _, d := range m {
		w = max(w, d)
	}
	return w
}

// TestCrashingCheckLeavesOthersOnSchedule crashes one check of 1,000 at
// least fifty times in a row: the others keep their schedule, send no
// notification and are never restarted, and the crasher is unhealthy
// with the panic's message until its faults are cleared.
//
// The bound on the others' schedule: during the crashes, no check's gap
// between two probe starts strays from the interval by more than the
// largest of half the interval, twice the worst stray of any check before
// and after the crashes, and twice the worst stray meanwhile of a control
// group: 100 checks under a manager of their own, in another actor
// system, which a stall of the whole machine delays as much. A crash that
// held up the other checks of its manager for a whole interval breaks the
// bound, unless the checks stray by half an interval already without it.
func TestCrashingCheckLeavesOthersOnSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 1,000 checks for seconds")
	}
	const (
		n        = 1000
		interval = 250 * time.Millisecond
		crasher  = uint64(1)
		crashes  = 50
		// panics is far more than crashes, so the crasher still crashes
		// when its status is read.
		panics = 100_000
		// The control group's IDs follow the others'.
		controls = 100
	)
	rec := &startRecorder{starts: make(map[uint64][]time.Time)}
	stats := &FaultStats{}
	tune := func(c *ManagerConfig) {
		c.NewProber = rec.newProber
		c.NotifyInterval = time.Hour
		c.BatchSize = 1000
	}
	h := newManagerHarness(t, func(c *ManagerConfig) {
		tune(c)
		fastRestarts(c)
		c.FaultStats = stats
	})
	control := newManagerHarness(t, tune)
	// The crasher probes often, so its crashes come quickly.
	all := configs(idRange(1, n), interval)
	all[crasher-1].Interval = 10 * time.Millisecond
	h.update(all...)
	control.update(configs(idRange(n+1, n+controls), interval)...)
	// Every check's first notification is out before the window opens.
	waitFirstNotes(t, h.sink, n)
	waitFirstNotes(t, control.sink, controls)

	before := time.Now()
	time.Sleep(4 * interval) // NOTE: a measuring window, not a wait for a condition.
	during := time.Now()
	h.inject(t, crasher, messages.FaultPanic, panics)
	waitFor(t, "50 crashes", func() bool { return stats.CheckRestarts.Load() >= crashes })
	after := time.Now()
	st := h.statuses(t)[crasher]
	if st.State != messages.StateUnhealthy ||
		!strings.Contains(st.Message, "injected fault: panic") {
		t.Errorf("crashing check after %d crashes: %v %q, want unhealthy "+
			"with the panic", crashes, st.State, st.Message)
	}
	h.ask(t, h.pid, &messages.ClearFaults{ID: crasher})
	h.waitStates(t, messages.StateHealthy, crasher)
	settled := time.Now()
	time.Sleep(4 * interval) // NOTE: a measuring window, not a wait for a condition.
	end := time.Now()

	others := func(id uint64) bool { return id != crasher && id <= n }
	in := rec.worst(others, during, after, interval)
	outside := max(worstOf(rec.worst(others, before, during, interval)),
		worstOf(rec.worst(others, settled, end, interval)))
	controlled := worstOf(rec.worst(func(id uint64) bool { return id > n },
		during, after, interval))
	limit := max(2*outside, 2*controlled, interval/2)
	t.Logf("worst stray from the interval: %v outside the crashes, %v during "+
		"%d crashes in %v, %v in the control group; limit %v", outside,
		worstOf(in), stats.CheckRestarts.Load(), after.Sub(during),
		controlled, limit)
	if len(in) < n-1 {
		t.Fatalf("only %d checks measured during the crashes, want %d", len(in), n-1)
	}
	checkStrays(t, in, limit)
	for id, st := range h.statuses(t) {
		if id != crasher && st.Restarts != 0 {
			t.Errorf("check %d restarted %d times, want 0", id, st.Restarts)
		}
	}
	for _, b := range drainSink(h.sink) {
		for _, note := range b.Notifications {
			if note.ID != crasher {
				t.Errorf("spurious notification for check %d: %+v", note.ID, note)
			}
		}
	}
}

// waitFirstNotes waits for the first notification of n checks.
func waitFirstNotes(t *testing.T, s *sink, n int) {
	t.Helper()
	first := make(map[uint64]bool)
	for len(first) < n {
		for _, note := range s.next(t).Notifications {
			first[note.ID] = true
		}
	}
}

// checkStrays fails the test for each check whose worst stray is over
// limit, naming the first few.
func checkStrays(t *testing.T, worst map[uint64]time.Duration, limit time.Duration) {
	t.Helper()
	var over []string
	for id, w := range worst {
		if w > limit {
			over = append(over, fmt.Sprintf("%d by %v", id, w))
		}
	}
	if len(over) > 0 {
		slices.Sort(over)
		t.Errorf("%d checks strayed from their interval by more than %v "+
			"during the crashes: %s", len(over), limit,
			strings.Join(over[:min(len(over), 10)], ", "))
	}
}

// drainSink returns the batches the sink holds now.
func drainSink(s *sink) []*messages.NotificationBatch {
	var out []*messages.NotificationBatch
	for {
		select {
		case b := <-s.batches:
			out = append(out, b)
		default:
			return out
		}
	}
}

// watchDeadLetters records the types of the dead letters of sys.
func watchDeadLetters(t *testing.T, sys *actor.ActorSystem) func() []string {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	sub := sys.EventStream.Subscribe(func(evt any) {
		if dl, ok := evt.(*actor.DeadLetterEvent); ok {
			mu.Lock()
			seen = append(seen, fmt.Sprintf("%T", dl.Message))
			mu.Unlock()
		}
	})
	t.Cleanup(func() { sys.EventStream.Unsubscribe(sub) })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// crashHarness is a manager with one check crashed once, waiting out a
// restart backoff of backoff.
func crashHarness(t *testing.T, backoff time.Duration) *managerHarness {
	t.Helper()
	tel := NewTelemetry()
	h := newManagerHarness(t, func(c *ManagerConfig) {
		c.RestartBackoffMin, c.RestartBackoffMax = backoff, backoff
		c.Telemetry = tel
	})
	h.update(tcpConfig(1, 10*time.Millisecond))
	h.waitStates(t, messages.StateHealthy, 1)
	h.inject(t, 1, messages.FaultPanic, 1)
	waitFor(t, "the crash", func() bool {
		return counterValue(t, tel.kind("check").crashes) == 1
	})
	return h
}

// TestRestartBackoffEndsWithTheManager stops the manager while a crashed
// check waits out its backoff: the restart must end with the manager,
// not reach for a check that is gone.
func TestRestartBackoffEndsWithTheManager(t *testing.T) {
	const backoff = 200 * time.Millisecond
	h := crashHarness(t, backoff)
	deadLetters := watchDeadLetters(t, h.sys)
	stopActor(t, h.sys, h.pid)

	time.Sleep(3 * backoff) // NOTE: a window for a late restart.
	for _, typ := range deadLetters() {
		if typ == "*actor.Restart" || typ == "*actors.restartDue" {
			t.Errorf("dead letter %s after the manager stopped", typ)
		}
	}
}

// TestReAddedCheckIgnoresStaleBackoff removes a crashed check during its
// backoff and adds it again: the new check has the same PID, and the old
// one's restart must not restart it.
func TestReAddedCheckIgnoresStaleBackoff(t *testing.T) {
	const backoff = time.Second
	h := crashHarness(t, backoff)
	crashed := time.Now()

	h.update()
	waitFor(t, "check 1 to be removed", func() bool {
		_, ok := h.statuses(t)[1]
		return !ok
	})
	h.update(tcpConfig(1, 10*time.Millisecond))
	h.waitStates(t, messages.StateHealthy, 1)
	if time.Since(crashed) > backoff {
		t.Skipf("re-adding took longer than the backoff of %v", backoff)
	}

	// The new check probes on well past the old one's restart.
	var last uint64
	waitFor(t, "probes after the old backoff", func() bool {
		st := h.statuses(t)[1]
		if time.Since(crashed) < 2*backoff {
			last = st.Successes
			return false
		}
		return st.Successes > last+2
	})
	if got := h.statuses(t)[1].Restarts; got != 0 {
		t.Errorf("re-added check restarted %d times, want 0", got)
	}
}

// TestNotifierCrashesBackOffAndLogOnce crashes the notifier several times
// in a row: each crash's reason is logged once, at the default level, and
// each restart waits twice as long as the one before.
func TestNotifierCrashesBackOffAndLogOnce(t *testing.T) {
	const crashes = 4
	lines, logger := teeLogger(t)
	stats := &FaultStats{}
	h := newLoggedHarness(t, logger, func(c *ManagerConfig) { c.FaultStats = stats })
	h.update(tcpConfig(1, 10*time.Millisecond))
	h.waitStates(t, messages.StateHealthy, 1)

	h.ask(t, h.pid, &messages.InjectFault{
		Actor: messages.ActorNotifier, Fault: messages.FaultPanic, Count: crashes,
	})
	waitFor(t, "the notifier's restarts", func() bool {
		return stats.SingletonRestarts.Load() == crashes
	})
	// The notifier works again.
	drainSink(h.sink)
	h.probers.setFail(1, true)
	h.sink.waitNote(t, "check 1's unhealthy notification",
		func(n messages.CheckStatus) bool {
			return n.ID == 1 && n.Status.State == messages.StateUnhealthy
		})

	got := lines.containing("injected fault: panic")
	if len(got) != crashes {
		t.Fatalf("%d log lines name the crash reason, want %d:\n%s",
			len(got), crashes, strings.Join(got, "\n"))
	}
	for i, l := range got {
		var line struct {
			Message   string  `json:"message"`
			RestartIn float64 `json:"restart_in"`
		}
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		want := restartBackoff(i+1, notifierBackoffMin, notifierBackoffMax)
		if line.Message != "notifier_crashed" ||
			line.RestartIn != float64(want)/float64(time.Millisecond) {
			t.Errorf("crash %d logged %s restart_in %vms, want notifier_crashed %v",
				i+1, line.Message, line.RestartIn, want)
		}
	}
}

// TestNotifierBackoffIsCapped checks the notifier's backoff constants: a
// first restart that waits, and a cap that many crashes reach.
func TestNotifierBackoffIsCapped(t *testing.T) {
	lo, hi := notifierBackoffMin, notifierBackoffMax
	if got := restartBackoff(1, lo, hi); got <= 0 {
		t.Errorf("first notifier backoff = %v, want positive", got)
	}
	if got := restartBackoff(1000, lo, hi); got != hi {
		t.Errorf("backoff after 1000 crashes = %v, want the cap %v", got, hi)
	}
}

// A crash loop's verdict is newer than the last probe, so a status read
// before it can never pass for newer.
func TestCrashLoopVerdictIsNewer(t *testing.T) {
	rec := newCheckRecord(tcpConfig(1, time.Second), nil)
	probed := time.Now().Add(-time.Millisecond)
	before, _, _ := rec.record(messages.ProbeResult{Success: true, Start: probed})
	st, prev, changed := rec.crashLooping("check keeps crashing: boom")
	if !changed || prev != messages.StateHealthy || st.State != messages.StateUnhealthy {
		t.Fatalf("crash loop: %v -> %v (changed %v), want healthy -> unhealthy",
			prev, st.State, changed)
	}
	if !st.LastCheck.After(before.LastCheck) {
		t.Errorf("verdict's last_check %v, want after the probe's %v",
			st.LastCheck, before.LastCheck)
	}
}

// Restart statistics forget old crashes, keeping the recent ones.
func TestRecentCrashesForgetsOldOnes(t *testing.T) {
	rs := actor.NewRestartStatistics()
	for range forgetCrashesAfter + 10 {
		rs.Fail()
	}
	// NOTE: ages the crashes above past the window below.
	time.Sleep(20 * time.Millisecond)
	if got := recentCrashes(rs, 10*time.Millisecond); got != 1 {
		t.Errorf("recent crashes = %d, want 1, the new one", got)
	}
	if got := rs.FailureCount(); got != 1 {
		t.Errorf("%d crashes kept after forgetting, want 1", got)
	}
	for range 3 {
		recentCrashes(rs, time.Hour)
	}
	if got := recentCrashes(rs, time.Hour); got != 5 {
		t.Errorf("recent crashes = %d, want 5", got)
	}
}
