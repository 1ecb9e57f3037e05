package actors

import (
	"testing"

	"github.com/lbhealth/hcsupervisor/messages"
)

func TestHealthRecord(t *testing.T) {
	const (
		U = messages.StateUnknown
		H = messages.StateHealthy
		X = messages.StateUnhealthy
	)
	tests := []struct {
		name    string
		retries int
		results []bool
		// states and changed are the expectations after each result.
		states  []messages.State
		changed []bool
	}{
		{
			name:    "first success leaves unknown",
			results: []bool{true, true},
			states:  []messages.State{H, H},
			changed: []bool{true, false},
		},
		{
			name:    "first failure leaves unknown despite retries",
			retries: 3,
			results: []bool{false, false},
			states:  []messages.State{X, X},
			changed: []bool{true, false},
		},
		{
			name:    "no retries: one failure turns unhealthy",
			results: []bool{true, false, true},
			states:  []messages.State{H, X, H},
			changed: []bool{true, true, true},
		},
		{
			name:    "retries tolerate consecutive failures",
			retries: 2,
			results: []bool{true, false, false, false, false},
			states:  []messages.State{H, H, H, X, X},
			changed: []bool{true, false, false, true, false},
		},
		{
			name:    "a success resets the failure streak",
			retries: 1,
			results: []bool{true, false, true, false, false},
			states:  []messages.State{H, H, H, H, X},
			changed: []bool{true, false, false, false, true},
		},
		{
			name:    "unhealthy recovers on a single success",
			retries: 5,
			results: []bool{false, true},
			states:  []messages.State{X, H},
			changed: []bool{true, true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h health
			if h.status.State != U {
				t.Fatalf("initial state = %v, want unknown", h.status.State)
			}
			var successes, failures uint64
			for i, ok := range tt.results {
				changed := h.record(messages.ProbeResult{Success: ok, Message: "m"},
					tt.retries)
				if ok {
					successes++
				} else {
					failures++
				}
				if got, want := h.status.State, tt.states[i]; got != want {
					t.Errorf("after result %d: state = %v, want %v", i, got, want)
				}
				if got, want := changed, tt.changed[i]; got != want {
					t.Errorf("after result %d: changed = %v, want %v", i, got, want)
				}
			}
			if h.status.Successes != successes || h.status.Failures != failures {
				t.Errorf("counters = %d/%d, want %d/%d", h.status.Successes,
					h.status.Failures, successes, failures)
			}
		})
	}
}
