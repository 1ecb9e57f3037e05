package actors

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// checkRecord is what outlives a check actor's incarnations: its config,
// its state machine, its restart count and its injected faults. The
// manager creates it; the check actor writes it, and so does the manager
// while the actor is suspended after a crash; status readers take
// snapshots.
type checkRecord struct {
	id  uint64
	tel *Telemetry
	// named is the number of the latest update that named the check; the
	// manager alone uses it, on its goroutine.
	named uint64

	mu       sync.Mutex
	cfg      messages.Config
	health   health
	restarts uint64
	// crashes counts crashes since the last completed probe.
	crashes int
	// faults holds the injected faults not yet suffered, by kind;
	// flapOK is the result the next flap gives. faulty is set while any
	// is queued, so that a probe's check for faults takes no lock.
	faults map[messages.Fault]int
	flapOK bool
	faulty atomic.Bool
	// hiddenUntil keeps a state restored from the state file out of the
	// periodic full status until then; a finished probe clears it.
	hiddenUntil time.Time
}

func newCheckRecord(cfg messages.Config, tel *Telemetry) *checkRecord {
	return &checkRecord{id: cfg.ID, cfg: cfg, tel: tel}
}

// config returns the record's current config.
func (r *checkRecord) config() messages.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg
}

// newProber builds a prober for the record's config with build, which
// must not keep the config it is given: it is the record's own, lent
// under the record's lock rather than copied.
func (r *checkRecord) newProber(build func(*messages.Config) (Prober, error)) (Prober, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return build(&r.cfg)
}

// timing is what a check needs of its config for every probe.
type timing struct {
	interval, timeout time.Duration
	checker           messages.CheckerType
}

// timing returns the config's timing, without copying the whole config.
func (r *checkRecord) timing() timing {
	r.mu.Lock()
	defer r.mu.Unlock()
	return timing{interval: r.cfg.Interval, timeout: r.cfg.Timeout,
		checker: r.cfg.Checker}
}

// cfgEqual reports whether the record's config equals cfg.
func (r *checkRecord) cfgEqual(cfg *messages.Config) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg.Equal(cfg)
}

// setConfig replaces the config; a config for a different probe also
// resets the state machine (but not the counters), because the old
// verdict was about another probe.
func (r *checkRecord) setConfig(cfg messages.Config) (sameProbe bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sameProbe = r.cfg.SameProbe(&cfg)
	r.cfg = cfg
	if !sameProbe {
		r.tel.transition(r.health.status.State, messages.StateUnknown)
		r.health.status.State = messages.StateUnknown
		r.health.failed = 0
		r.health.since = time.Time{}
	}
	return sameProbe
}

// record applies a probe result; it returns the new status and whether
// the state changed, along with the state before.
func (r *checkRecord) record(res messages.ProbeResult) (
	st messages.Status, prev messages.State, changed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.crashes = 0
	r.hiddenUntil = time.Time{}
	prev = r.health.status.State
	changed = r.health.record(res, r.cfg.Retries)
	r.tel.transition(prev, r.health.status.State)
	return r.statusLocked(), prev, changed
}

// crashed counts a crash of the record's actor and returns how many
// happened since the last completed probe.
func (r *checkRecord) crashed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.crashes++
	return r.crashes
}

// crashLooping marks the check unhealthy because it keeps crashing; it
// returns the new status, the state before and whether the state changed.
func (r *checkRecord) crashLooping(reason string) (
	st messages.Status, prev messages.State, changed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.health.status.Message = reason
	// The verdict is newer than the last probe: a status read before it,
	// as a snapshot is, must not pass for newer (see messages.Status).
	r.health.status.LastCheck = now
	prev = r.health.status.State
	changed = r.health.enter(messages.StateUnhealthy, now)
	r.tel.transition(prev, messages.StateUnhealthy)
	return r.statusLocked(), prev, changed
}

// report returns the check as an operator sees it at now.
func (r *checkRecord) report(now time.Time) messages.CheckReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := messages.CheckReport{
		ID:       r.id,
		Checker:  r.cfg.Checker,
		Target:   r.cfg.Target(),
		Config:   r.cfg.String(),
		Interval: r.cfg.Interval.String(),
		Status:   r.replyLocked(now),
	}
	if !r.health.since.IsZero() {
		since := r.health.since
		rep.Since = &since
	}
	return rep
}

// addFault queues count faults of one kind, at most MaxFaultCount in all,
// and returns how many it queued.
func (r *checkRecord) addFault(f messages.Fault, count int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.faults == nil {
		r.faults = make(map[messages.Fault]int)
	}
	before := r.faults[f]
	r.faults[f] = min(before+count, messages.MaxFaultCount)
	r.faulty.Store(r.faultsQueuedLocked())
	return r.faults[f] - before
}

func (r *checkRecord) faultsQueuedLocked() bool {
	for _, n := range r.faults {
		if n > 0 {
			return true
		}
	}
	return false
}

// clearFaults drops every fault not yet suffered.
func (r *checkRecord) clearFaults() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.faults)
	r.faulty.Store(false)
}

// takeFault uses up one queued fault of the given kinds, the first kind
// first, and returns it, or "" when none is queued. For a flap, ok is
// the result it gives.
func (r *checkRecord) takeFault(kinds ...messages.Fault) (f messages.Fault, ok bool) {
	if !r.faulty.Load() {
		return "", false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() { r.faulty.Store(r.faultsQueuedLocked()) }()
	for _, k := range kinds {
		if r.faults[k] > 0 {
			r.faults[k]--
			if k == messages.FaultFlap {
				ok, r.flapOK = r.flapOK, !r.flapOK
			}
			return k, ok
		}
	}
	return "", false
}

// restore seeds the record with its check's state before a restart,
// hidden from the periodic full status until hiddenUntil.
func (r *checkRecord) restore(saved savedCheck, hiddenUntil time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tel.restored(saved.Status.State)
	r.health.status = saved.Status
	r.health.since = saved.Since
	r.restarts = saved.Status.Restarts
	r.hiddenUntil = hiddenUntil
}

// periodic returns the status to include in the periodic full status, or
// false when there is none yet: a check that has not finished a probe,
// or whose restored state is still hidden.
func (r *checkRecord) periodic(now time.Time) (messages.Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.statusLocked()
	if st.State == messages.StateUnknown || now.Before(r.hiddenUntil) {
		return st, false
	}
	return st, true
}

// saved returns what the state file keeps of the check.
func (r *checkRecord) saved() savedCheck {
	r.mu.Lock()
	cfg := r.cfg
	s := savedCheck{ID: r.id, Status: r.statusLocked(), Since: r.health.since}
	r.mu.Unlock()

	// Hashed outside the lock, which the check's actor takes every probe.
	s.Config = fingerprint(&cfg)
	return s
}

// detach ends the record's part in the telemetry, when its check is
// removed, and returns the checker and state it leaves.
func (r *checkRecord) detach() (messages.CheckerType, messages.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tel = nil
	return r.cfg.Checker, r.health.status.State
}

// restarted counts one restart of the record's actor.
func (r *checkRecord) restarted() {
	r.mu.Lock()
	r.restarts++
	r.mu.Unlock()
}

// reply returns the check's status for a status request at now: marked
// Unconfirmed while a restored state is hidden from the periodic full
// status, so that nothing passes it on to the Engine before then.
func (r *checkRecord) reply(now time.Time) messages.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.replyLocked(now)
}

func (r *checkRecord) replyLocked(now time.Time) messages.Status {
	st := r.statusLocked()
	st.Unconfirmed = now.Before(r.hiddenUntil)
	return st
}

func (r *checkRecord) statusLocked() messages.Status {
	st := r.health.status
	st.Restarts = r.restarts
	return st
}
