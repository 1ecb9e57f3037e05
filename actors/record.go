package actors

import (
	"sync"

	"github.com/lbhealth/hcsupervisor/messages"
)

// checkRecord is what outlives a check actor's incarnations: its config,
// its state machine and its restart count. The manager creates it; the
// check actor is its only writer; status readers take snapshots.
type checkRecord struct {
	id uint64

	mu       sync.Mutex
	cfg      messages.Config
	health   health
	restarts uint64
}

func newCheckRecord(cfg messages.Config) *checkRecord {
	return &checkRecord{id: cfg.ID, cfg: cfg}
}

// config returns the record's current config.
func (r *checkRecord) config() messages.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg
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
		r.health.status.State = messages.StateUnknown
		r.health.failed = 0
	}
	return sameProbe
}

// record applies a probe result; it returns the new status and whether
// the state changed, along with the state before.
func (r *checkRecord) record(res messages.ProbeResult) (
	st messages.Status, prev messages.State, changed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev = r.health.status.State
	changed = r.health.record(res, r.cfg.Retries)
	return r.statusLocked(), prev, changed
}

// restarted counts one restart of the record's actor.
func (r *checkRecord) restarted() {
	r.mu.Lock()
	r.restarts++
	r.mu.Unlock()
}

// status returns a snapshot of the check's status.
func (r *checkRecord) status() messages.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.statusLocked()
}

func (r *checkRecord) statusLocked() messages.Status {
	st := r.health.status
	st.Restarts = r.restarts
	return st
}
