package actors

import (
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// health is a check's state machine, exactly Seesaw's: the first result
// leaves Unknown; a success makes the check healthy; a failure makes it
// unhealthy, except that a healthy check stays healthy through its first
// `retries` consecutive failures.
type health struct {
	status messages.Status
	// failed counts consecutive failures.
	failed int
	// since is when the check entered its state; zero while unknown.
	since time.Time
}

// record applies one probe result and reports whether the state changed.
func (h *health) record(res messages.ProbeResult, retries int) bool {
	prev := h.status.State
	h.status.Message = res.Message
	h.status.LastCheck = res.Start
	h.status.Duration = res.Duration

	if res.Success {
		h.failed = 0
		h.status.Successes++
		return h.enter(messages.StateHealthy, res.Start)
	}

	h.failed++
	h.status.Failures++
	if prev == messages.StateHealthy && h.failed <= retries {
		return false
	}
	return h.enter(messages.StateUnhealthy, res.Start)
}

// enter moves the check to state at time at, and reports whether that is
// a change.
func (h *health) enter(state messages.State, at time.Time) bool {
	if h.status.State == state {
		return false
	}
	h.status.State = state
	h.since = at
	return true
}
