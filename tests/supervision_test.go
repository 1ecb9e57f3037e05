package tests

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/messages"
	"github.com/lbhealth/hcsupervisor/tests/faultinject"
)

// fleet is a set of HTTP backends, one check each, whose health the test
// sets: the truth the server must converge to.
type fleet struct {
	backends []*httpBackend
	configs  []messages.Config
}

func startFleet(t *testing.T, n int, interval time.Duration) *fleet {
	t.Helper()
	f := &fleet{}
	for i := range n {
		b := startHTTP(t, http.StatusOK)
		c := httpConfig(uint64(i+1), b.addr, "")
		c.Interval = interval
		f.backends = append(f.backends, b)
		f.configs = append(f.configs, c)
	}
	return f
}

// toggle flips random backends between 200 and 500.
func (f *fleet) toggle(rng *rand.Rand) {
	b := f.backends[rng.IntN(len(f.backends))]
	if b.code.Load() == http.StatusOK {
		b.setCode(http.StatusInternalServerError)
	} else {
		b.setCode(http.StatusOK)
	}
}

// truth is the state each check must end in.
func (f *fleet) truth() map[uint64]messages.State {
	out := make(map[uint64]messages.State)
	for i, b := range f.backends {
		st := messages.StateHealthy
		if b.code.Load() != http.StatusOK {
			st = messages.StateUnhealthy
		}
		out[uint64(i+1)] = st
	}
	return out
}

// lastNotified returns the state of each check's newest notification.
func lastNotified(c *client) map[uint64]messages.State {
	out := make(map[uint64]messages.State)
	for _, n := range c.notes(0) {
		out[n.ID] = n.Status.State
	}
	return out
}

func sameStates(got, want map[uint64]messages.State) bool {
	if len(got) != len(want) {
		return false
	}
	for id, st := range want {
		if got[id] != st {
			return false
		}
	}
	return true
}

func describeDiff(got, want map[uint64]messages.State) string {
	var out string
	for id, st := range want {
		if got[id] != st {
			out += fmt.Sprintf(" %d:%v(want %v)", id, got[id], st)
		}
	}
	return out
}

// faultServer starts a server with fault injection and fast restarts,
// and no periodic full status, which would hide a lost notification.
func faultServer(t *testing.T, stats *actors.FaultStats) *server {
	t.Helper()
	return startServer(t, serverOptions{
		EnableFaultInjection: true,
		Tune: func(c *actors.ManagerConfig) {
			c.RestartBackoffMin = time.Millisecond
			c.RestartBackoffMax = 50 * time.Millisecond
			c.FaultStats = stats
		},
	})
}

func TestSingletonCrashesLoseNothing(t *testing.T) {
	stats := &actors.FaultStats{}
	srv := faultServer(t, stats)
	f := startFleet(t, 20, 50*time.Millisecond)
	watcher := dial(t, srv.path)
	watcher.update(f.configs...)
	watcher.waitFor(waitTimeout, "every check healthy", func() bool {
		return sameStates(lastNotified(watcher), f.truth())
	})

	injector, err := faultinject.Dial(srv.path)
	if err != nil {
		t.Fatal(err)
	}
	defer injector.Close()

	// Under a stream of state changes, crash every singleton in turn.
	rng := rand.New(rand.NewPCG(1, 2))
	targets := []string{
		messages.ActorNotifier, messages.ActorProxy, messages.ActorManager,
		messages.ActorNotifier, messages.ActorProxy,
	}
	for i := range 60 {
		f.toggle(rng)
		if i%12 == 0 {
			if _, err := injector.Crash(targets[i/12], 1); err != nil {
				t.Fatalf("crash %s: %v", targets[i/12], err)
			}
		}
		time.Sleep(10 * time.Millisecond) // NOTE: paces the load; asserts nothing.
	}

	// The watcher's own connection survived, and its newest notification
	// for every check is the truth.
	truth := f.truth()
	watcher.waitFor(waitTimeout, "every check's truth", func() bool {
		return sameStates(lastNotified(watcher), truth)
	})
	if got := srv.stats.Clients.Load(); got != 2 {
		t.Errorf("connected clients = %d, want 2: a crash dropped one", got)
	}
	// The crashes did happen: two of the notifier and two of the proxy
	// restarted them, after their backoffs, and the manager's resumed it.
	eventually(t, waitTimeout, "4 singleton restarts", func() bool {
		return stats.SingletonRestarts.Load() == 4
	})
	if got := stats.ManagerResumes.Load(); got != 1 {
		t.Errorf("manager resumes = %d, want 1", got)
	}
}

func TestChaosConverges(t *testing.T) {
	srv := faultServer(t, nil)
	f := startFleet(t, 30, 30*time.Millisecond)
	for i := range f.configs {
		f.configs[i].Timeout = 200 * time.Millisecond
	}
	c := dial(t, srv.path)
	c.update(f.configs...)
	c.waitFor(waitTimeout, "every check healthy", func() bool {
		return sameStates(lastNotified(c), f.truth())
	})

	injector, err := faultinject.Dial(srv.path)
	if err != nil {
		t.Fatal(err)
	}
	defer injector.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		id := uint64(rng.IntN(len(f.configs)) + 1)
		fault := messages.Faults[rng.IntN(len(messages.Faults))]
		if _, err := injector.Inject(id, fault, rng.IntN(5)+1); err != nil {
			t.Fatalf("inject %s into %d: %v", fault, id, err)
		}
		f.toggle(rng)
		time.Sleep(5 * time.Millisecond) // NOTE: paces the chaos; asserts nothing.
	}
	if _, err := injector.ClearAll(); err != nil {
		t.Fatal(err)
	}

	truth := f.truth()
	c.waitFor(waitTimeout, "every check to converge to the truth", func() bool {
		return sameStates(lastNotified(c), truth)
	})
	st := c.status()
	got := make(map[uint64]messages.State)
	for _, cs := range st.Statuses {
		got[cs.ID] = cs.Status.State
	}
	if !sameStates(got, truth) {
		t.Errorf("status differs from the truth:%s", describeDiff(got, truth))
	}
}

func TestFaultInjectionDisabledByDefault(t *testing.T) {
	srv := startServer(t, serverOptions{})
	injector, err := faultinject.Dial(srv.path)
	if err != nil {
		t.Fatal(err)
	}
	defer injector.Close()
	if _, err := injector.Inject(1, messages.FaultPanic, 1); err == nil {
		t.Error("inject succeeded on a server without -enable_fault_injection")
	}
	if _, err := injector.ClearAll(); err == nil {
		t.Error("clear succeeded on a server without -enable_fault_injection")
	}
}
