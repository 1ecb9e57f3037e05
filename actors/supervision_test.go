package actors

import (
	"context"
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
	// The restart alone sent nothing: the only notification is the first.
	for {
		select {
		case b := <-h.sink.batches:
			for _, n := range b.Notifications {
				if n.Status.State != messages.StateHealthy {
					t.Errorf("notification %+v after a restart", n)
				}
			}
			continue
		default:
		}
		break
	}
}

func TestCrashLoopIsUnhealthyUntilCleared(t *testing.T) {
	h := newManagerHarness(t, fastRestarts)
	h.update(tcpConfig(1, 5*time.Millisecond))
	h.waitStates(t, messages.StateHealthy, 1)

	h.inject(t, 1, messages.FaultPanic, 1000)
	h.waitStates(t, messages.StateUnhealthy, 1)
	st := h.statuses(t)[1]
	if want := "check keeps crashing: injected fault: panic"; st.Message != want {
		t.Errorf("message = %q, want %q", st.Message, want)
	}

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
	c := tcpConfig(1, 10*time.Millisecond)
	c.Timeout = 2 * time.Second
	h.update(c)
	h.waitStates(t, messages.StateHealthy, 1)

	h.inject(t, 1, messages.FaultHang, 1)
	// For 300ms, well inside the 2s hang that starts within 10ms, the
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
	waitFor(t, "the hang's timeout result", func() bool {
		return h.statuses(t)[1].Message == "injected fault: hang: held past the timeout"
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

// jitter returns how far each gap between two probe starts of the checks
// (other than skip) within [from, to) strayed from interval.
func (r *startRecorder) jitter(skip uint64, from, to time.Time,
	interval time.Duration) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for id, starts := range r.starts {
		if id == skip {
			continue
		}
		for i := 1; i < len(starts); i++ {
			if starts[i-1].Before(from) || !starts[i].Before(to) {
				continue
			}
			d := starts[i].Sub(starts[i-1]) - interval
			out = append(out, max(d, -d))
		}
	}
	slices.Sort(out)
	return out
}

type proberFunc func(context.Context) messages.ProbeResult

func (f proberFunc) Probe(ctx context.Context) messages.ProbeResult { return f(ctx) }

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(float64(len(sorted)-1)*p)]
}

// TestCrashingCheckLeavesOthersOnSchedule crashes one check of 1,000 fifty
// times in a row. The bound on the others' jitter: its 99th percentile
// grows by at most jitterSlack while the check crashes.
func TestCrashingCheckLeavesOthersOnSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 1,000 checks for seconds")
	}
	const (
		n           = 1000
		interval    = 250 * time.Millisecond
		crasher     = uint64(1)
		jitterSlack = 50 * time.Millisecond
	)
	rec := &startRecorder{starts: make(map[uint64][]time.Time)}
	stats := &FaultStats{}
	h := newManagerHarness(t, func(c *ManagerConfig) {
		fastRestarts(c)
		c.NewProber = rec.newProber
		c.FaultStats = stats
		c.NotifyInterval = time.Hour
		c.BatchSize = 1000
	})
	// The crasher probes often, so its fifty crashes come quickly.
	all := configs(idRange(1, n), interval)
	all[crasher-1].Interval = 10 * time.Millisecond
	h.update(all...)
	// Every check's first notification is out before the window opens.
	first := make(map[uint64]bool)
	for len(first) < n {
		for _, note := range h.sink.next(t).Notifications {
			first[note.ID] = true
		}
	}

	before := time.Now()
	time.Sleep(4 * interval) // NOTE: a measuring window, not a wait for a condition.
	during := time.Now()
	h.inject(t, crasher, messages.FaultPanic, 50)
	waitFor(t, "50 crashes", func() bool { return stats.CheckRestarts.Load() >= 50 })
	after := time.Now()

	jb := rec.jitter(crasher, before, during, interval)
	jd := rec.jitter(crasher, during, after, interval)
	t.Logf("jitter of %d gaps before: p50 %v p99 %v max %v", len(jb),
		percentile(jb, .5), percentile(jb, .99), percentile(jb, 1))
	t.Logf("jitter of %d gaps during 50 crashes (%v): p50 %v p99 %v max %v",
		len(jd), after.Sub(during), percentile(jd, .5), percentile(jd, .99),
		percentile(jd, 1))
	if len(jd) < n {
		t.Fatalf("only %d gaps measured during the crashes", len(jd))
	}
	if got, limit := percentile(jd, .99), percentile(jb, .99)+jitterSlack; got > limit {
		t.Errorf("p99 jitter during crashes = %v, want at most %v", got, limit)
	}
	for _, b := range drainSink(h.sink) {
		for _, note := range b.Notifications {
			if note.ID != crasher {
				t.Errorf("spurious notification for check %d: %+v", note.ID, note)
			}
		}
	}

	h.waitStates(t, messages.StateUnhealthy, crasher)
	if got := h.statuses(t)[crasher].Message; !strings.Contains(got, "injected fault: panic") {
		t.Errorf("crashing check's message = %q, want the panic", got)
	}
	h.ask(t, h.pid, &messages.ClearFaults{ID: crasher})
	h.waitStates(t, messages.StateHealthy, crasher)
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
