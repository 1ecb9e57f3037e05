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

// The notifier's restart backoff, counted as an edge's: the n-th crash
// within notifierCrashWindow waits notifierBackoffMin×2^(n-1), at most
// notifierBackoffMax, so that a notifier crashing at start cannot spin.
// The notifier holds the pending notifications meanwhile, so the cap is
// low.
const (
	notifierBackoffMin  = 10 * time.Millisecond
	notifierBackoffMax  = time.Second
	notifierCrashWindow = 10 * time.Second
)

// FaultStats counts crashes, restarts and injected faults. Its fields are
// safe to read concurrently.
type FaultStats struct {
	// CheckRestarts counts restarts of check actors, when they happen
	// (after their backoff).
	CheckRestarts atomic.Uint64
	// SingletonRestarts counts restarts of the notifier and the edges,
	// when they happen (after their backoff).
	SingletonRestarts atomic.Uint64
	// ManagerResumes counts crashes of the manager, which resumes rather
	// than restarts.
	ManagerResumes atomic.Uint64
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
	if i := slices.Index(messages.Faults, f); i >= 0 && n > 0 {
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

// restartDue says the backoff of a crashed child is over: sup is to
// restart child. Each backoff sends one of its own, so a restartDue of a
// backoff cancelled or replaced since is told by its pointer.
type restartDue struct {
	child *actor.PID
	sup   actor.Supervisor
}

// IgnoreDeadLetterLogging keeps a restartDue that outlives its supervisor
// out of the dead-letter log.
func (*restartDue) IgnoreDeadLetterLogging() {}

// backoffs holds the restarts a supervisor has scheduled, by the child's
// PID Id: each is a timer that sends the supervisor a *restartDue, so the
// restart itself happens in the supervisor's Receive, and only if the
// backoff is still pending then. The supervisor cancels a child's backoff
// when it removes the child, and every backoff when it stops. It is used
// on the supervisor's goroutine only, after start.
type backoffs struct {
	// root sends the supervisor, self, each *restartDue.
	root    *actor.RootContext
	self    *actor.PID
	pending map[string]backoff
}

// start binds b to its supervisor, c's actor, as it starts.
func (b *backoffs) start(c actor.Context) {
	b.root, b.self = c.ActorSystem().Root, c.Self()
}

// backoff is one pending restart: the message its timer sends.
type backoff struct {
	due   *restartDue
	timer *time.Timer
}

// schedule makes the supervisor restart child through sup after d,
// replacing any backoff of child already pending.
func (b *backoffs) schedule(sup actor.Supervisor, child *actor.PID, d time.Duration) {
	b.cancel(child.Id)
	if b.pending == nil {
		b.pending = make(map[string]backoff)
	}
	due := &restartDue{child: child, sup: sup}
	root, self := b.root, b.self
	b.pending[child.Id] = backoff{
		due:   due,
		timer: time.AfterFunc(d, func() { root.Send(self, due) }),
	}
}

// restart ends the backoff r names and restarts its child, and reports
// whether it did: not for a backoff cancelled or replaced since.
func (b *backoffs) restart(r *restartDue) bool {
	if b.pending[r.child.Id].due != r {
		return false
	}
	delete(b.pending, r.child.Id)
	r.sup.RestartChildren(r.child)
	return true
}

// cancel drops the backoff of the child with PID Id id, if any.
func (b *backoffs) cancel(id string) {
	if p, ok := b.pending[id]; ok {
		p.timer.Stop()
		delete(b.pending, id)
	}
}

// cancelAll drops every backoff.
func (b *backoffs) cancelAll() {
	for _, p := range b.pending {
		p.timer.Stop()
	}
	clear(b.pending)
}

// HandleFailure makes the manager its children's supervisor strategy: a
// crashed check restarts alone, with its record kept, after a backoff that
// doubles with each crash in a row; a check that keeps crashing is
// reported unhealthy with the crash's reason. A crashed notifier restarts,
// keeping its batch, after a backoff of its own. Each crash's reason is
// logged once, here. It runs on the manager's goroutine.
func (m *manager) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor,
	child *actor.PID, rs *actor.RestartStatistics, reason, _ any) {
	if m.env != nil && child.Equal(m.env.notifier) && !m.halting {
		m.notifierFailed(sup, child, rs, reason)
		return
	}
	id, ok := parseChildID(child.Id)
	rec := m.records[id]
	_, stopping := m.stopping[child.Id]
	if !ok || rec == nil || stopping || m.draining || m.halting {
		// A child being removed, or stopped with the manager: let it go.
		sup.StopChildren(child)
		return
	}

	crashes := rec.crashed()
	delay := restartBackoff(crashes, m.cfg.RestartBackoffMin, m.cfg.RestartBackoffMax)
	m.log.Warn().Uint64("id", id).Str("reason", fmt.Sprint(reason)).
		Int("crashes_in_a_row", crashes).Dur("restart_in", delay).
		Msg("check_crashed")
	if crashes >= crashLoopCrashes {
		st, prev, changed := rec.crashLooping(
			fmt.Sprintf("check keeps crashing: %v", reason))
		if changed {
			cfg := rec.config()
			m.log.Error().Uint64("id", id).Int("crashes_in_a_row", crashes).
				Msg("check_crash_looping")
			// The same line as a probe's change, so that a search for
			// state changes finds this one too.
			addCheck(m.log.Info(), &cfg).Str("old_state", prev.String()).
				Str("new_state", st.State.String()).Str("result", st.Message).
				Msg("state_changed")
			m.root.Send(m.env.notifier, &messages.CheckStatus{ID: id, Status: st})
		}
	}
	m.backoffs.schedule(sup, child, delay)
}

// forgetCrashesAfter is how many crashes older than its window a
// singleton's restart statistics may hold before they are forgotten.
const forgetCrashesAfter = 1000

// recentCrashes counts one more crash in rs and returns how many fall
// within window. The library's statistics only forget when a strategy
// gives up, which ours never do, so every 1000 older crashes are dropped
// here; the recent ones are kept as if they had just happened, which
// holds the backoff up for at most one more window.
func recentCrashes(rs *actor.RestartStatistics, window time.Duration) int {
	rs.Fail()
	n := rs.NumberOfFailures(window)
	if rs.FailureCount()-n >= forgetCrashesAfter {
		rs.Reset()
		for range n {
			rs.Fail()
		}
	}
	return n
}

// notifierFailed schedules the restart of the crashed notifier, whose
// crashes rs counts.
func (m *manager) notifierFailed(sup actor.Supervisor, child *actor.PID,
	rs *actor.RestartStatistics, reason any) {
	crashes := recentCrashes(rs, notifierCrashWindow)
	delay := restartBackoff(crashes, notifierBackoffMin, notifierBackoffMax)
	m.log.Error().Str("reason", fmt.Sprint(reason)).
		Int("recent_crashes", crashes).Dur("restart_in", delay).
		Msg("notifier_crashed")
	m.backoffs.schedule(sup, child, delay)
}

// handleRestartDue restarts a crashed child whose backoff is over, unless
// the backoff was cancelled meanwhile.
func (m *manager) handleRestartDue(r *restartDue) {
	if !m.backoffs.restart(r) {
		return
	}
	if m.env != nil && r.child.Equal(m.env.notifier) {
		m.cfg.FaultStats.SingletonRestarts.Add(1)
	} else {
		m.cfg.FaultStats.CheckRestarts.Add(1)
	}
}

// handleInjectFault queues a fault for a check, or crashes the notifier or
// the manager itself, and answers the sender with *messages.Ack or
// *messages.Error.
func (m *manager) handleInjectFault(c actor.Context, f *messages.InjectFault) {
	var target *actor.PID
	queued := f.SingletonCrashes()
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
		queued = rec.addFault(f.Fault, f.Count)
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
	m.cfg.FaultStats.countInjected(f.Fault, queued)
	m.log.Warn().Uint64("id", f.ID).Str("target_actor", f.Actor).
		Str("fault", string(f.Fault)).Int("count", f.Count).
		Int("queued", queued).Msg("fault_injected")
	c.Respond(f.Ack(queued))
	if target == nil {
		return
	}
	for range queued {
		c.Send(target, &messages.Crash{Reason: "injected fault: panic"})
	}
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
