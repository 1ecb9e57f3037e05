package actors

import (
	"os"
	"path/filepath"
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
