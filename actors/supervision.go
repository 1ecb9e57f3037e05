package actors

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lbhealth/hcsupervisor/messages"
)

// Restart backoff of a crashing check: the n-th crash in a row waits
// RestartBackoffMin×2^(n-1), at most RestartBackoffMax, before the check
// restarts. Defaults below.
const (
	DefaultRestartBackoffMin = 100 * time.Millisecond
	DefaultRestartBackoffMax = 30 * time.Second
)

// crashLoopCrashes is how many crashes in a row, with no probe completed
// in between, make a check unhealthy: it is then crash-looping, and the
// Engine must not route to a backend nobody is checking.
const crashLoopCrashes = 3

// FaultStats counts crashes, restarts and injected faults. Its fields are
// safe to read concurrently.
type FaultStats struct {
	// CheckRestarts counts restarts of check actors.
	CheckRestarts atomic.Uint64
	// SingletonRestarts counts restarts of the manager, the notifier and
	// the edges.
	SingletonRestarts atomic.Uint64
	// injected counts injected faults, indexed as messages.Faults.
	injected [5]atomic.Uint64
}

// Injected returns how many faults of kind f were injected.
func (s *FaultStats) Injected(f messages.Fault) uint64 {
	if i := slices.Index(messages.Faults, f); i >= 0 {
		return s.injected[i].Load()
	}
	return 0
}

func (s *FaultStats) countInjected(f messages.Fault, n int) {
	if i := slices.Index(messages.Faults, f); i >= 0 {
		s.injected[i].Add(uint64(n))
	}
}

// restartBackoff returns how long the n-th crash in a row waits.
func restartBackoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// HandleFailure makes the manager its children's supervisor strategy: a
// crashed check restarts alone, with its record kept, after a backoff that
// doubles with each crash in a row; a check that keeps crashing is
// reported unhealthy with the crash's reason. A crashed notifier restarts
// at once, keeping its batch. It runs on the manager's goroutine.
func (m *manager) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor,
	child *actor.PID, _ *actor.RestartStatistics, reason, _ any) {
	if m.env != nil && child.Equal(m.env.notifier) {
		m.cfg.FaultStats.SingletonRestarts.Add(1)
		m.log.Error().Str("reason", fmt.Sprint(reason)).Msg("notifier_crashed")
		sup.RestartChildren(child)
		return
	}
	id, ok := parseChildID(child.Id)
	rec := m.records[id]
	if !ok || rec == nil {
		// A child being removed: let it go.
		sup.StopChildren(child)
		return
	}

	crashes := rec.crashed()
	delay := restartBackoff(crashes, m.cfg.RestartBackoffMin, m.cfg.RestartBackoffMax)
	m.cfg.FaultStats.CheckRestarts.Add(1)
	m.log.Warn().Uint64("id", id).Str("reason", fmt.Sprint(reason)).
		Int("crashes_in_a_row", crashes).Dur("restart_in", delay).
		Msg("check_crashed")
	if crashes >= crashLoopCrashes {
		st, changed := rec.crashLooping(fmt.Sprintf("check keeps crashing: %v", reason))
		if changed {
			m.log.Error().Uint64("id", id).Int("crashes_in_a_row", crashes).
				Msg("check_crash_looping")
			m.root.Send(m.env.notifier, &messages.CheckStatus{ID: id, Status: st})
		}
	}
	// NOTE: the library's own backoff strategy also restarts from a
	// timer; sending the restart is safe from any goroutine.
	time.AfterFunc(delay, func() { sup.RestartChildren(child) })
}

// handleInjectFault queues a fault for a check, or crashes the notifier or
// the manager itself, and answers the sender with *messages.Ack or
// *messages.Error.
func (m *manager) handleInjectFault(c actor.Context, f *messages.InjectFault) {
	var target *actor.PID
	switch f.Actor {
	case "":
		rec := m.records[f.ID]
		if rec == nil {
			c.Respond(&messages.Error{
				Message: fmt.Sprintf("inject_fault: no check with id %d", f.ID),
				ID:      &f.ID,
			})
			return
		}
		rec.addFault(f.Fault, f.Count)
	case messages.ActorNotifier:
		target = m.env.notifier
	case messages.ActorManager:
		target = c.Self()
	default:
		c.Respond(&messages.Error{
			Message: fmt.Sprintf("inject_fault: actor %s is not under the manager", f.Actor),
		})
		return
	}
	m.cfg.FaultStats.countInjected(f.Fault, f.Count)
	m.log.Warn().Uint64("id", f.ID).Str("target_actor", f.Actor).
		Str("fault", string(f.Fault)).Int("count", f.Count).Msg("fault_injected")
	c.Respond(&messages.Ack{Message: describeFault(f)})
	for range min(f.Count, maxSingletonCrashes) {
		if target != nil {
			c.Send(target, &messages.Crash{Reason: "injected fault: panic"})
		}
	}
}

// maxSingletonCrashes bounds the crashes queued for one singleton at once.
const maxSingletonCrashes = 100

func describeFault(f *messages.InjectFault) string {
	target := fmt.Sprintf("check %d", f.ID)
	if f.Actor != "" {
		target = f.Actor
	}
	return fmt.Sprintf("injected %d× %s into %s", f.Count, f.Fault, target)
}

// handleClearFaults drops the faults not yet suffered and answers the
// sender with *messages.Ack or *messages.Error.
func (m *manager) handleClearFaults(c actor.Context, f *messages.ClearFaults) {
	if f.All {
		for _, rec := range m.records {
			rec.clearFaults()
		}
		c.Respond(&messages.Ack{Message: "cleared the faults of every check"})
		return
	}
	rec := m.records[f.ID]
	if rec == nil {
		c.Respond(&messages.Error{
			Message: fmt.Sprintf("clear_faults: no check with id %d", f.ID),
			ID:      &f.ID,
		})
		return
	}
	rec.clearFaults()
	c.Respond(&messages.Ack{Message: fmt.Sprintf("cleared the faults of check %d", f.ID)})
}
