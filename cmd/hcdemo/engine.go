package main

import (
	"fmt"
	"sync"

	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
)

// engine is the demo's simulated Seesaw Engine: an enginesim.Server that
// serves the demo's checks, names their IDs for the printer and prints
// every notification it receives. Create it with newEngine. Its methods
// are safe for concurrent use.
type engine struct {
	sim *enginesim.Server
	p   *printer

	// mu is held while the served checks change and while a
	// notification prints, so that none prints before its ID is named.
	mu     sync.Mutex
	served []demoCheck
	ids    []uint64 // ids[i] is served[i]'s
}

// newEngine returns an engine that serves nothing yet and prints to p.
// Zero idBase numbers checks as the Engine does, from a large number
// derived from the process ID.
func newEngine(p *printer, idBase uint64) *engine {
	e := &engine{p: p}
	cfg := enginesim.DefaultConfig()
	if idBase != 0 {
		cfg.IDBase = idBase
	}
	cfg.History = -1 // printed as they arrive: nothing to keep
	cfg.OnNotify = e.notified
	e.sim = enginesim.New(cfg)
	return e
}

// Listen serves the Engine's RPC service on the unix socket at path until
// Close.
func (e *engine) Listen(path string) error {
	return e.sim.Listen(path)
}

// Close stops serving and removes the socket.
func (e *engine) Close() error {
	return e.sim.Close()
}

// Serve makes the Engine serve checks in place of what it served, as a
// new cluster config would, and names their IDs for the printer.
func (e *engine) Serve(checks []demoCheck) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	cs := make([]enginesim.Check, len(checks))
	for i, c := range checks {
		cs[i] = c.Check
	}
	u, err := e.sim.SetChecks(cs)
	if err != nil {
		return fmt.Errorf("serving checks: %w", err)
	}
	e.served, e.ids = checks, u.IDs
	e.p.Serve(u.IDs, checks)
	return nil
}

// Fetched reports whether a bridge has fetched the checks at least once.
func (e *engine) Fetched() bool {
	return e.Counts().Healthchecks > 0
}

// Counts counts the calls and notifications the Engine has received.
func (e *engine) Counts() enginesim.Counts {
	return e.sim.Counts()
}

// Configs returns the served checks converted as the bridge converts
// them, in the demo's order: what the bridge would send the server.
func (e *engine) Configs() ([]messages.Config, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	configs := make([]messages.Config, len(e.ids))
	for i, id := range e.ids {
		var err error
		configs[i], err = bridge.ToConfig(id, e.sim.Config(id))
		if err != nil {
			return nil, fmt.Errorf("converting %s: %w", e.served[i].Name, err)
		}
	}
	return configs, nil
}

// Statuses returns the status the Engine holds for each served check, in
// the demo's order; unknown for a check it has heard nothing of.
func (e *engine) Statuses() []messages.CheckStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	states := e.sim.States()
	out := make([]messages.CheckStatus, len(e.ids))
	for i, id := range e.ids {
		st, ok := states[id]
		if !ok {
			st.Message = "no notification received"
		}
		out[i] = toCheckStatus(bridge.Notification{Id: id, Status: st})
	}
	return out
}

// notified prints n; the Server calls it for every notification it
// receives.
func (e *engine) notified(n bridge.Notification) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.p.Notify(toCheckStatus(n))
}

// toCheckStatus returns n as the server reported it, without the
// restarts, which have no place on the wire.
func toCheckStatus(n bridge.Notification) messages.CheckStatus {
	st := n.Status
	return messages.CheckStatus{
		ID: n.Id,
		Status: messages.Status{
			State:     messages.State(st.State),
			Message:   st.Message,
			LastCheck: st.LastCheck,
			Duration:  st.Duration,
			Successes: st.Successes,
			Failures:  st.Failures,
		},
	}
}
