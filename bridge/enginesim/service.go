package enginesim

import (
	"errors"
	"time"

	"github.com/lbhealth/hcsupervisor/bridge"
)

// The RPCs the Server answers, by their wire names.
const (
	methodHealthchecks = serviceName + ".Healthchecks"
	methodHealthState  = serviceName + ".HealthState"
)

// service is the Engine's RPC service as one connection sees it. net/rpc
// calls its exported methods; it must export nothing else.
type service struct {
	s    *Server
	gone <-chan struct{} // closed when the connection has gone
}

// Healthchecks answers SeesawEngine.Healthchecks as the Engine does: the
// served configs to a trusted caller, nil when there are none.
func (v *service) Healthchecks(ctx *bridge.Context, reply *bridge.Checks) error {
	s := v.s
	s.called(func(c *Counts) { c.Healthchecks++ })
	if err := s.hang(v.gone); err != nil {
		return s.fail(methodHealthchecks, err)
	}
	if err := admit(ctx); err != nil {
		return s.fail(methodHealthchecks, err)
	}

	s.mu.Lock()
	injected, configs := s.faults.healthchecksErr, s.reg.configs
	s.mu.Unlock()
	if injected != "" {
		return s.fail(methodHealthchecks, errors.New(injected))
	}

	// The map is never modified once served, so gob may encode it after
	// a SetChecks has replaced it.
	reply.Configs = configs
	s.cfg.Logger.Debug().Int("checks", len(configs)).Msg("healthchecks_served")
	return nil
}

// HealthState answers SeesawEngine.HealthState as the Engine does: it
// records the notifications of a trusted caller, ignoring unknown IDs,
// and replies 0.
func (v *service) HealthState(args *bridge.HealthState, reply *int) error {
	s := v.s
	s.called(func(c *Counts) { c.HealthState++ })
	if err := s.hang(v.gone); err != nil {
		return s.fail(methodHealthState, err)
	}
	if args == nil {
		return s.fail(methodHealthState, errNilArgs)
	}
	if err := admit(args.Ctx); err != nil {
		return s.fail(methodHealthState, err)
	}

	s.mu.Lock()
	injected := s.faults.healthStateErr
	s.mu.Unlock()
	if injected != "" {
		return s.fail(methodHealthState, errors.New(injected))
	}

	s.record(args.Notifications)
	*reply = 0
	return nil
}

// admit returns the Engine's error for a call with ctx: only a trusted
// context is admitted.
func admit(ctx *bridge.Context) error {
	switch {
	case ctx == nil:
		return errNilContext
	case ctx.AuthType != bridge.AuthTrusted:
		return errAccess
	}
	return nil
}

// called counts a call.
func (s *Server) called(count func(*Counts)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	count(&s.obs.counts)
	s.obs.changedLocked()
}

// fail counts err as the reply to a call of method and returns it.
func (s *Server) fail(method string, err error) error {
	s.mu.Lock()
	s.obs.counts.Errors++
	s.obs.changedLocked()
	s.mu.Unlock()
	s.cfg.Logger.Debug().Str("method", method).Err(err).Msg("call_failed")
	return err
}

// hang blocks while the Server hangs, until SetHang(false), which lets
// the call go on, or until the connection has gone, which ends it with
// errAbandoned.
func (s *Server) hang(gone <-chan struct{}) error {
	s.mu.Lock()
	if !s.faults.hang {
		s.mu.Unlock()
		return nil
	}
	release := s.faults.release
	s.obs.counts.Hung++
	s.obs.changedLocked()
	s.mu.Unlock()

	select {
	case <-release:
		return nil
	case <-gone:
		return errAbandoned
	}
}

// record stores the notifications of one accepted HealthState call and
// passes them to OnNotify.
func (s *Server) record(ns []*bridge.Notification) {
	s.mu.Lock()
	unknown := s.recordLocked(ns, time.Now())
	s.mu.Unlock()

	// The Engine logs and ignores unknown IDs; after an Engine restart
	// every ID is unknown, so a warning each would flood the log.
	for _, id := range unknown {
		s.cfg.Logger.Debug().Uint64("id", id).Msg("unknown_healthcheck_id")
	}
	if s.cfg.OnNotify == nil {
		return
	}
	for _, n := range ns {
		if n != nil {
			s.cfg.OnNotify(*n)
		}
	}
}

// recordLocked stores ns, received at now, and returns their unknown
// IDs. The Server's mutex must be held.
func (s *Server) recordLocked(ns []*bridge.Notification, now time.Time) []uint64 {
	s.obs.batches++
	var unknown []uint64
	for _, n := range ns {
		if n == nil {
			continue // gob cannot send one, but a local caller could
		}
		known := s.reg.configs[n.Id] != nil
		if known {
			s.obs.states[n.Id] = n.Status
		} else {
			unknown = append(unknown, n.Id)
			s.obs.counts.UnknownIDs++
		}
		s.obs.counts.Notifications++
		s.obs.history.add(Received{At: now, Call: s.obs.batches, Known: known,
			Notification: *n})
	}
	s.obs.changedLocked()
	return unknown
}
