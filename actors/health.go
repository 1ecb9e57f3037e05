package actors

import "github.com/lbhealth/hcsupervisor/messages"

// health is a check's state machine, exactly Seesaw's: the first result
// leaves Unknown; a success makes the check healthy; a failure makes it
// unhealthy, except that a healthy check stays healthy through its first
// `retries` consecutive failures.
type health struct {
	status messages.Status
	// failed counts consecutive failures.
	failed int
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
		h.status.State = messages.StateHealthy
		return prev != h.status.State
	}

	h.failed++
	h.status.Failures++
	if prev == messages.StateHealthy && h.failed <= retries {
		return false
	}
	h.status.State = messages.StateUnhealthy
	return prev != h.status.State
}
