package actors

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

// managerHarness is a manager with fake probers and a collecting sink.
type managerHarness struct {
	sys     *actor.ActorSystem
	pid     *actor.PID
	sink    *sink
	probers *fakeProbers
}

func newManagerHarness(t *testing.T, tune func(*ManagerConfig)) *managerHarness {
	t.Helper()
	return newLoggedHarness(t, testLogger(t), tune)
}

// newLoggedHarness is newManagerHarness with every log line, the actor
// library's included, going to logger.
func newLoggedHarness(t *testing.T, logger zerolog.Logger,
	tune func(*ManagerConfig)) *managerHarness {
	t.Helper()
	sys := NewSystem(logger)
	t.Cleanup(sys.Shutdown)
	h := &managerHarness{sys: sys, sink: newSink(t, sys), probers: newFakeProbers()}
	cfg := DefaultManagerConfig()
	cfg.Sink = h.sink.pid
	cfg.NewProber = h.probers.newProber
	cfg.BatchDelay = 5 * time.Millisecond
	cfg.Logger = logger
	if tune != nil {
		tune(&cfg)
	}
	pid, err := sys.Root.SpawnNamed(NewManager(cfg), "manager")
	if err != nil {
		t.Fatal(err)
	}
	h.pid = pid
	t.Cleanup(func() { stopActor(t, sys, pid) })
	return h
}

func tcpConfig(id uint64, interval time.Duration) messages.Config {
	c := messages.Config{
		ID:       id,
		Interval: interval,
		Timeout:  time.Second,
		Checker:  messages.CheckerTCP,
		IP:       netip.MustParseAddr("127.0.0.1"),
		Port:     9,
	}
	c.ApplyDefaults()
	return c
}

func configs(ids []uint64, interval time.Duration) []messages.Config {
	out := make([]messages.Config, len(ids))
	for i, id := range ids {
		out[i] = tcpConfig(id, interval)
	}
	return out
}

func idRange(from, to uint64) []uint64 {
	var out []uint64
	for id := from; id <= to; id++ {
		out = append(out, id)
	}
	return out
}

func (h *managerHarness) update(cfgs ...messages.Config) {
	h.sys.Root.Send(h.pid, &messages.UpdateConfigs{Configs: cfgs})
}

// statuses returns the manager's status response by ID.
func (h *managerHarness) statuses(t *testing.T) map[uint64]messages.Status {
	t.Helper()
	res, err := h.sys.Root.RequestFuture(h.pid, &messages.RequestStatus{},
		10*time.Second).Result()
	if err != nil {
		t.Fatalf("request status: %v", err)
	}
	out := make(map[uint64]messages.Status)
	for _, cs := range res.(*messages.StatusResponse).Statuses {
		out[cs.ID] = cs.Status
	}
	return out
}

// checkAlive reports whether check id's actor answers.
func (h *managerHarness) checkAlive(id uint64) bool {
	pid := actor.NewPID(h.pid.Address, h.pid.Id+"/"+strconv.FormatUint(id, 10))
	_, err := h.sys.Root.RequestFuture(pid, &messages.RequestStatus{},
		10*time.Second).Result()
	return err == nil
}

// waitStates waits until every listed check is in state want.
func (h *managerHarness) waitStates(t *testing.T, want messages.State, ids ...uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d checks to be %v", len(ids), want), func() bool {
		st := h.statuses(t)
		for _, id := range ids {
			if st[id].State != want {
				return false
			}
		}
		return true
	})
}

func TestManagerLifecycle(t *testing.T) {
	h := newManagerHarness(t, nil)
	const interval = 20 * time.Millisecond

	h.update(configs([]uint64{1, 2, 3}, interval)...)
	h.waitStates(t, messages.StateHealthy, 1, 2, 3)

	t.Run("state change notifies", func(t *testing.T) {
		h.probers.setFail(2, true)
		h.sink.waitNote(t, "check 2's unhealthy notification",
			func(n messages.CheckStatus) bool {
				return n.ID == 2 && n.Status.State == messages.StateUnhealthy
			})
	})

	t.Run("update in place keeps state and counters", func(t *testing.T) {
		built := h.probers.built.Load()
		before := h.statuses(t)[1].Successes
		c1 := tcpConfig(1, 2*interval)
		c1.Retries, c1.Timeout = 3, 2*time.Second
		h.update(c1, tcpConfig(2, interval), tcpConfig(3, interval))
		// Read after the update, in the manager's order: a reset shows.
		if got := h.statuses(t)[1].Successes; got < before {
			t.Errorf("check 1 successes = %d after the update, want at least %d",
				got, before)
		}
		waitFor(t, "check 1 to keep probing", func() bool {
			return h.statuses(t)[1].Successes > before+2
		})
		if got := h.statuses(t)[1].State; got != messages.StateHealthy {
			t.Errorf("check 1 state = %v, want healthy", got)
		}
		if got := h.probers.built.Load(); got != built {
			t.Errorf("probers built = %d, want %d: an in-place update rebuilt one",
				got, built)
		}
	})

	t.Run("remove stops the check", func(t *testing.T) {
		h.update(tcpConfig(1, interval), tcpConfig(2, interval))
		waitFor(t, "check 3 to stop", func() bool { return !h.checkAlive(3) })
		if _, ok := h.statuses(t)[3]; ok {
			t.Error("removed check 3 still in the status response")
		}
		runs, runs1 := h.probers.runCount(3), h.probers.runCount(1)
		waitFor(t, "check 1 to run 3 more probes", func() bool {
			return h.probers.runCount(1) >= runs1+3
		})
		if got := h.probers.runCount(3); got != runs {
			t.Errorf("removed check 3 ran %d more probes", got-runs)
		}
	})

	t.Run("remove and re-add at once", func(t *testing.T) {
		h.update(tcpConfig(1, interval))
		h.update(tcpConfig(1, interval), tcpConfig(2, interval))
		h.probers.setFail(2, false)
		h.waitStates(t, messages.StateHealthy, 1, 2)
		if !h.checkAlive(2) {
			t.Error("re-added check 2 has no actor")
		}
	})

	t.Run("a new target resets the state", func(t *testing.T) {
		built := h.probers.built.Load()
		h.probers.setFail(1, true)
		c1 := tcpConfig(1, interval)
		c1.Port = 10
		h.update(c1, tcpConfig(2, interval))
		h.waitStates(t, messages.StateUnhealthy, 1)
		if got := h.probers.built.Load(); got != built+1 {
			t.Errorf("probers built = %d, want %d", got, built+1)
		}
	})
}

func TestManagerChurnsThousandChecks(t *testing.T) {
	h := newManagerHarness(t, func(c *ManagerConfig) {
		c.BatchSize = 500
	})
	const interval = 300 * time.Millisecond

	h.update(configs(idRange(1, 1000), interval)...)
	h.waitStates(t, messages.StateHealthy, idRange(1, 1000)...)
	before := h.statuses(t)

	// Drop 1-500, keep 501-1000 (half of them with a new interval), add
	// 1001-1500.
	next := configs(idRange(501, 1500), interval)
	for i := range 250 {
		next[i].Interval = 2 * interval
	}
	h.update(next...)
	h.waitStates(t, messages.StateHealthy, idRange(501, 1500)...)

	after := h.statuses(t)
	if len(after) != 1000 {
		t.Errorf("status lists %d checks, want 1000", len(after))
	}
	for id := uint64(501); id <= 1000; id++ {
		if after[id].Successes < before[id].Successes {
			t.Fatalf("check %d: successes went from %d to %d, want kept",
				id, before[id].Successes, after[id].Successes)
		}
	}
	for _, id := range []uint64{1, 250, 500} {
		if h.checkAlive(id) {
			t.Errorf("removed check %d still has an actor", id)
		}
	}

	h.update()
	waitFor(t, "every check to be removed", func() bool {
		return len(h.statuses(t)) == 0 && !h.checkAlive(1000) && !h.checkAlive(1500)
	})
	if h.probers.overlap.Load() {
		t.Error("a check ran two probes at once")
	}
}

func TestManagerPeriodicStatusSkipsUnknown(t *testing.T) {
	h := newManagerHarness(t, func(c *ManagerConfig) {
		c.NotifyInterval = 30 * time.Millisecond
	})
	// Check 1 probes at once and often; check 2's first probe is due
	// somewhere within an hour.
	h.update(tcpConfig(1, 10*time.Millisecond), tcpConfig(2, time.Hour))
	h.waitStates(t, messages.StateHealthy, 1)

	periodic := 0
	for periodic < 5 {
		for _, n := range h.sink.next(t).Notifications {
			if n.ID == 2 {
				t.Fatalf("check 2 reported as %v before its first probe",
					n.Status.State)
			}
			periodic++
		}
	}
}

func TestCheckNeverOverlapsAndTimesOut(t *testing.T) {
	h := newManagerHarness(t, nil)
	h.probers.delay = time.Hour
	c := tcpConfig(1, 10*time.Millisecond)
	c.Timeout = 30 * time.Millisecond
	h.update(c)

	h.waitStates(t, messages.StateUnhealthy, 1)
	waitFor(t, "several timed-out probes", func() bool {
		return h.statuses(t)[1].Failures >= 3
	})
	if got := h.statuses(t)[1].Message; got != "timed out" {
		t.Errorf("message = %q, want %q", got, "timed out")
	}
	if h.probers.overlap.Load() {
		t.Error("a check ran two probes at once")
	}
}

func TestCheckSurvivesPanickingProber(t *testing.T) {
	h := newManagerHarness(t, nil)
	h.probers.panics = true
	h.update(tcpConfig(1, 10*time.Millisecond))

	h.waitStates(t, messages.StateUnhealthy, 1)
	st := h.statuses(t)[1]
	if want := "check keeps crashing: probe panicked: scripted panic"; st.Message != want {
		t.Errorf("message = %q, want %q", st.Message, want)
	}
	// The crash that makes it unhealthy has not been restarted yet.
	if st.Restarts < crashLoopCrashes-1 {
		t.Errorf("restarts = %d, want at least %d", st.Restarts, crashLoopCrashes-1)
	}
}

func TestManagerShutdownDrains(t *testing.T) {
	h := newManagerHarness(t, func(c *ManagerConfig) {
		c.BatchDelay = time.Hour
		c.BatchSize = 1000
	})
	h.update(configs(idRange(1, 20), 10*time.Millisecond)...)
	h.waitStates(t, messages.StateHealthy, idRange(1, 20)...)

	// Every state change waits in the notifier until the drain flushes it.
	h.sys.Root.Send(h.pid, &messages.Shutdown{})
	seen := make(map[uint64]bool)
	for len(seen) < 20 {
		for _, n := range h.sink.next(t).Notifications {
			seen[n.ID] = true
		}
	}
	waitFor(t, "the manager to stop", func() bool {
		_, err := h.sys.Root.RequestFuture(h.pid, &messages.RequestStatus{},
			10*time.Second).Result()
		return err != nil
	})
}

func TestMaxChecksRejectsEachConfig(t *testing.T) {
	h := newManagerHarness(t, func(c *ManagerConfig) { c.MaxChecks = 3 })
	h.update(configs([]uint64{1, 2, 3}, time.Hour)...)

	// The running checks keep their places; the new ones are cut.
	update := &messages.UpdateConfigs{Configs: configs([]uint64{4, 1, 5, 2, 3}, time.Hour)}
	res := h.ask(t, h.pid, update)
	applied, ok := res.(*messages.ConfigsApplied)
	if !ok {
		t.Fatalf("answer = %#v, want *messages.ConfigsApplied", res)
	}
	var got []uint64
	for _, ce := range applied.Rejected {
		got = append(got, ce.ID)
		e := messages.ErrorFor(ce)
		want := fmt.Sprintf("config %d: too many checks: over the limit of 3 "+
			"(-max_checks); not applied", ce.ID)
		if e.Message != want || e.ID == nil || *e.ID != ce.ID {
			t.Errorf("error = %q (id %v), want %q with its id", e.Message, e.ID, want)
		}
		if !errors.Is(ce, ErrTooManyChecks) {
			t.Errorf("rejection %v is not ErrTooManyChecks", ce)
		}
	}
	if want := []uint64{4, 5}; !slices.Equal(got, want) {
		t.Errorf("rejected IDs = %v, want %v", got, want)
	}
	if got := len(h.statuses(t)); got != 3 {
		t.Errorf("%d checks run, want 3", got)
	}
}

// A prober whose builder panics fails its check with the reason, and
// the process lives on: the probe starts on the manager's clock, where a
// panic would end it.
func TestCheckSurvivesPanickingProberBuilder(t *testing.T) {
	h := newManagerHarness(t, func(c *ManagerConfig) {
		c.NewProber = func(*messages.Config) (Prober, error) {
			panic("no prober today")
		}
	})
	h.update(tcpConfig(1, 10*time.Millisecond))

	h.waitStates(t, messages.StateUnhealthy, 1)
	want := "building the prober panicked: no prober today"
	if got := h.statuses(t)[1].Message; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

// Removing a check whose probe ignores its cancellation does not hold up
// the manager: the check drops the probe and stops at once, and the
// manager answers the next request while the probe still runs.
func TestRemovingCheckDoesNotWaitForItsProbe(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	h := newManagerHarness(t, func(c *ManagerConfig) {
		c.NewProber = func(*messages.Config) (Prober, error) {
			return proberFunc(func(context.Context) messages.ProbeResult {
				select {
				case started <- struct{}{}:
				default:
				}
				<-release // ignores its context
				return messages.ProbeResult{Success: true}
			}), nil
		}
	})
	t.Cleanup(func() { close(release) })
	h.update(tcpConfig(1, 10*time.Millisecond))
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the probe did not start within 10s")
	}

	h.update()
	t0 := time.Now()
	if n := len(h.statuses(t)); n != 0 {
		t.Fatalf("%d checks after removing the only one", n)
	}
	waitFor(t, "the check's actor to stop", func() bool { return !h.checkAlive(1) })
	// Not a speed measure: checks once waited up to 5s for such a probe,
	// and now that a check runs on its sender's goroutine, the manager's,
	// that wait would hold the manager.
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("the check took %v to stop behind its probe", d)
	}
}
