package actors

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

func stateConfig(file, policy string) func(*ManagerConfig) {
	return func(c *ManagerConfig) {
		c.StateFile = file
		c.RestorePolicy = policy
		c.NotifyInterval = 20 * time.Millisecond
		c.StateSaveInterval = time.Hour
	}
}

// drainManager stops a harness's manager as a clean shutdown does, which
// writes the state file.
func drainManager(t *testing.T, h *managerHarness) {
	t.Helper()
	h.sys.Root.Send(h.pid, &messages.Shutdown{})
	waitFor(t, "the manager to stop", func() bool {
		_, err := h.sys.Root.RequestFuture(h.pid, &messages.RequestStatus{},
			time.Second).Result()
		return err != nil
	})
}

func TestWarmRestartKeepsStateWithoutTransitions(t *testing.T) {
	for _, policy := range []string{RestoreConfirm, RestoreInterval} {
		t.Run(policy, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "state.json")
			cfgs := configs(idRange(1, 50), 30*time.Millisecond)

			first := newManagerHarness(t, stateConfig(file, policy))
			first.probers.setFail(7, true)
			first.update(cfgs...)
			healthy := append(idRange(1, 6), idRange(8, 50)...)
			first.waitStates(t, messages.StateHealthy, healthy...)
			first.waitStates(t, messages.StateUnhealthy, 7)
			before := first.statuses(t)
			drainManager(t, first)

			second := newManagerHarness(t, stateConfig(file, policy))
			second.probers.setFail(7, true)
			second.update(cfgs...)

			// At once, before any probe: the states and counters of before.
			now := second.statuses(t)
			for id, st := range before {
				if now[id].State != st.State || now[id].Successes < st.Successes {
					t.Fatalf("check %d restored as %+v, want %+v", id, now[id], st)
				}
			}
			// After fresh probes of every check, the Engine's side has seen
			// nothing but the states it had.
			waitFor(t, "a fresh probe of every check", func() bool {
				st := second.statuses(t)
				for id := range before {
					if st[id].Successes+st[id].Failures <=
						before[id].Successes+before[id].Failures {
						return false
					}
				}
				return true
			})
			for _, b := range drainSink(second.sink) {
				for _, n := range b.Notifications {
					if want := before[n.ID].State; n.Status.State != want {
						t.Errorf("check %d notified %v after the restart, want only %v",
							n.ID, n.Status.State, want)
					}
				}
			}
		})
	}
}

func TestWarmRestartIgnoresChangedConfigsAndBadFiles(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state.json")
	first := newManagerHarness(t, stateConfig(file, RestoreConfirm))
	first.update(tcpConfig(1, 20*time.Millisecond), tcpConfig(2, 20*time.Millisecond))
	first.waitStates(t, messages.StateHealthy, 1, 2)
	drainManager(t, first)

	// Check 2's target changed: its saved state is about another probe.
	second := newManagerHarness(t, stateConfig(file, RestoreConfirm))
	changed := tcpConfig(2, time.Hour)
	changed.Port = 10
	second.update(tcpConfig(1, time.Hour), changed)
	st := second.statuses(t)
	if st[1].State != messages.StateHealthy || st[2].State != messages.StateUnknown {
		t.Errorf("restored states = %v and %v, want healthy and unknown",
			st[1].State, st[2].State)
	}

	for name, content := range map[string]string{
		"corrupt": "{not json", "foreign": `{"version":99,"checks":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(bad, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			h := newManagerHarness(t, stateConfig(bad, RestoreConfirm))
			h.update(tcpConfig(1, 10*time.Millisecond))
			h.waitStates(t, messages.StateHealthy, 1)
		})
	}
}

// gatedID is the check whose probes wait for a gatedProbers' gate.
const gatedID = 1

// gatedProbers hand out probers that succeed at once, except those of
// check gatedID: they wait for the gate to open (or their context to
// end) and count the probes that finished.
type gatedProbers struct {
	gate     chan struct{}
	open     func()
	finished atomic.Int64
}

func newGatedProbers() *gatedProbers {
	g := &gatedProbers{gate: make(chan struct{})}
	g.open = sync.OnceFunc(func() { close(g.gate) })
	return g
}

func (g *gatedProbers) newProber(cfg *messages.Config) (Prober, error) {
	return gatedProber{g: g, id: cfg.ID}, nil
}

type gatedProber struct {
	g  *gatedProbers
	id uint64
}

func (p gatedProber) Probe(ctx context.Context) messages.ProbeResult {
	if p.id == gatedID {
		select {
		case <-p.g.gate:
		case <-ctx.Done():
			return messages.ProbeResult{Message: "cancelled"}
		}
		p.g.finished.Add(1)
	}
	return messages.ProbeResult{Success: true, Message: "gated success"}
}

// periodicHas reports whether a batch is of the periodic full status, and
// whether it holds id.
func periodicHas(b *messages.NotificationBatch, id uint64) (periodic, has bool) {
	return b.Periodic, slices.ContainsFunc(b.Notifications,
		func(cs messages.CheckStatus) bool { return cs.ID == id })
}

// saveHealthy runs check gatedID (with cfg) healthy under a manager that
// drains into file.
func saveHealthy(t *testing.T, file, policy string, cfg messages.Config) {
	t.Helper()
	first := newManagerHarness(t, stateConfig(file, policy))
	first.update(cfg)
	first.waitStates(t, messages.StateHealthy, gatedID)
	drainManager(t, first)
}

// restoreGated starts a manager on file whose check gatedID (cfg) is
// restored while its probes wait for the gate, beside a fresh check 2
// that keeps the periodic status going. It returns the harness, the
// gate and when the configs were sent.
func restoreGated(t *testing.T, file, policy string, cfg messages.Config) (
	*managerHarness, *gatedProbers, time.Time) {
	t.Helper()
	probers := newGatedProbers()
	h := newManagerHarness(t, func(c *ManagerConfig) {
		stateConfig(file, policy)(c)
		c.NewProber = probers.newProber
	})
	t.Cleanup(probers.open) // before the manager stops
	sent := time.Now()
	h.update(cfg, tcpConfig(2, 10*time.Millisecond))
	if got := h.statuses(t)[gatedID].State; got != messages.StateHealthy {
		t.Fatalf("check %d restored as %v, want healthy", gatedID, got)
	}
	return h, probers, sent
}

// waitPeriodic reads batches until a periodic one holds id, and fails
// the test if none does within 15s; each, if set, sees every batch
// before that one.
func waitPeriodic(t *testing.T, h *managerHarness, id uint64,
	each func(*messages.NotificationBatch)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b := h.sink.next(t)
		if periodic, has := periodicHas(b, id); periodic && has {
			return
		}
		if each != nil {
			each(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("check %d not in the periodic status within 15s", id)
		}
	}
}

// TestRestoreConfirmWaitsForAProbe: under -restore_policy confirm, a
// restored check stays out of the periodic full status, however many
// intervals pass, and is marked unconfirmed in status replies, until a
// fresh probe finishes.
func TestRestoreConfirmWaitsForAProbe(t *testing.T) {
	const interval = 50 * time.Millisecond
	file := filepath.Join(t.TempDir(), "state.json")
	cfg := tcpConfig(gatedID, interval)
	cfg.Timeout = time.Hour
	saveHealthy(t, file, RestoreConfirm, cfg)
	h, probers, sent := restoreGated(t, file, RestoreConfirm, cfg)

	if st := h.statuses(t)[gatedID]; !st.Unconfirmed {
		t.Errorf("status reply before a fresh probe = %+v, want it unconfirmed", st)
	}
	for time.Since(sent) < 10*interval {
		b := h.sink.next(t)
		if _, has := periodicHas(b, gatedID); has {
			t.Fatalf("check %d notified %v before a fresh probe (%v after the restart)",
				gatedID, b.Notifications, time.Since(sent))
		}
	}
	probers.open()
	waitPeriodic(t, h, gatedID, nil)
	if probers.finished.Load() == 0 {
		t.Error("check in the periodic status before its fresh probe finished")
	}
	if st := h.statuses(t)[gatedID]; st.Unconfirmed {
		t.Errorf("status reply after a fresh probe = %+v, want it confirmed", st)
	}
}

// TestRestoreIntervalWaitsForAnInterval: under -restore_policy interval,
// a restored check rejoins the periodic full status once its interval
// has passed, though no fresh probe finished.
func TestRestoreIntervalWaitsForAnInterval(t *testing.T) {
	const interval = time.Second
	file := filepath.Join(t.TempDir(), "state.json")
	cfg := tcpConfig(gatedID, interval)
	cfg.Timeout = time.Hour
	saveHealthy(t, file, RestoreInterval, cfg)
	h, probers, sent := restoreGated(t, file, RestoreInterval, cfg)

	without := 0
	waitPeriodic(t, h, gatedID, func(b *messages.NotificationBatch) {
		periodic, has := periodicHas(b, gatedID)
		if has {
			t.Fatalf("check %d notified %v outside the periodic status",
				gatedID, b.Notifications)
		}
		if periodic && time.Since(sent) < interval {
			without++
		}
	})
	if read := time.Since(sent); read < interval {
		t.Errorf("check %d in the periodic status %v after the restart, "+
			"before its interval %v", gatedID, read, interval)
	}
	if without == 0 {
		t.Error("no periodic status without the restored check in its first interval")
	}
	if n := probers.finished.Load(); n != 0 {
		t.Errorf("fresh probes finished = %d, want none (the state was restored)", n)
	}
}

// TestPeriodicStateWriteWithoutDrain stops a manager without a drain, as
// a crash or a kill does, after the periodic state writes: the next
// manager restores what they saved.
func TestPeriodicStateWriteWithoutDrain(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state.json")
	periodic := func(c *ManagerConfig) {
		stateConfig(file, RestoreConfirm)(c)
		c.StateSaveInterval = 20 * time.Millisecond
	}
	cfgs := configs(idRange(1, 3), 10*time.Millisecond)
	for i := range cfgs {
		cfgs[i].Timeout = time.Hour
	}
	want := map[uint64]messages.State{
		1: messages.StateHealthy, 2: messages.StateHealthy, 3: messages.StateUnhealthy,
	}

	first := newManagerHarness(t, periodic)
	first.probers.setFail(3, true)
	first.update(cfgs...)
	waitFor(t, "the state file to hold every state", func() bool {
		saved, err := loadStateFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for id, st := range want {
			if saved[id].Status.State != st {
				return false
			}
		}
		return true
	})
	stopActor(t, first.sys, first.pid) // Stopping writes nothing.

	second := newManagerHarness(t, periodic)
	second.probers.delay = time.Hour // No probe finishes.
	second.update(cfgs...)
	got := second.statuses(t)
	for id, st := range want {
		if got[id].State != st {
			t.Errorf("check %d restored as %v, want %v", id, got[id].State, st)
		}
	}
}
