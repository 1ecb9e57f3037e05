package messages

import (
	"encoding/json"
	"fmt"
	"time"
)

// State is the health of one check. The numeric values are Seesaw's, so the
// Engine bridge can put a State on the wire unchanged.
type State int

// The states a check can be in. A check starts Unknown and leaves it with
// its first result; it never returns to Unknown.
const (
	StateUnknown   State = 0
	StateUnhealthy State = 1
	StateHealthy   State = 2
)

var stateNames = [...]string{
	StateUnknown:   "unknown",
	StateUnhealthy: "unhealthy",
	StateHealthy:   "healthy",
}

// String returns the state's protocol name: "unknown", "unhealthy" or
// "healthy".
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("state(%d)", int(s))
	}
	return stateNames[s]
}

// ParseState returns the State named by its protocol name.
func ParseState(name string) (State, error) {
	for s, n := range stateNames {
		if n == name {
			return State(s), nil
		}
	}
	return StateUnknown, fmt.Errorf("unknown state %q", name)
}

// MarshalText encodes the state as its protocol name.
func (s State) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(stateNames) {
		return nil, fmt.Errorf("invalid state %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a protocol name.
func (s *State) UnmarshalText(b []byte) error {
	st, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = st
	return nil
}

// Status is what is known about one check: its state, the outcome of its
// last probe, and its lifetime counters.
type Status struct {
	// State is the check's health after its last probe.
	State State
	// Message describes the last probe's outcome, for people.
	Message string
	// LastCheck is when the last probe started, or when crashes made the
	// check unhealthy after it; zero before the first. A status with a
	// later LastCheck is the newer of two.
	LastCheck time.Time
	// Duration is how long the last probe took.
	Duration time.Duration
	// Successes and Failures count every probe since the check was
	// configured; they are not reset by restarts or config updates.
	Successes uint64
	Failures  uint64
	// Restarts counts how often the check's actor was restarted after a
	// crash.
	Restarts uint64
	// Unconfirmed says State was restored from the server's state file
	// and no probe has confirmed it yet, so the Engine is not told it
	// (see -restore_policy). Only replies to status requests set it.
	Unconfirmed bool
}

type statusJSON struct {
	State     State  `json:"state"`
	Message   string `json:"message"`
	LastCheck string `json:"last_check,omitempty"`
	Duration  string `json:"duration"`
	Successes uint64 `json:"successes"`
	Failures  uint64 `json:"failures"`
	Restarts  uint64 `json:"restarts"`
	// Unconfirmed is left out when false, as it nearly always is.
	Unconfirmed bool `json:"unconfirmed,omitempty"`
}

// MarshalJSON encodes the status as the protocol's status object:
// last_check in RFC 3339 with nanoseconds (absent before the first probe)
// and duration as a Go duration string.
func (s Status) MarshalJSON() ([]byte, error) {
	out := statusJSON{
		State:     s.State,
		Message:   s.Message,
		Duration:  s.Duration.String(),
		Successes: s.Successes,
		Failures:  s.Failures,
		Restarts:  s.Restarts,

		Unconfirmed: s.Unconfirmed,
	}
	if !s.LastCheck.IsZero() {
		out.LastCheck = s.LastCheck.Format(time.RFC3339Nano)
	}
	return json.Marshal(out)
}

// UnmarshalJSON decodes the protocol's status object. Unlike a config, a
// status is the server's output, so fields unknown to this version are
// ignored: a newer server may add some without breaking older clients.
func (s *Status) UnmarshalJSON(b []byte) error {
	var in statusJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	out := Status{
		State:     in.State,
		Message:   in.Message,
		Successes: in.Successes,
		Failures:  in.Failures,
		Restarts:  in.Restarts,

		Unconfirmed: in.Unconfirmed,
	}
	if in.LastCheck != "" {
		t, err := time.Parse(time.RFC3339Nano, in.LastCheck)
		if err != nil {
			return fmt.Errorf("last_check: %w", err)
		}
		out.LastCheck = t
	}
	if in.Duration != "" {
		d, err := time.ParseDuration(in.Duration)
		if err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		out.Duration = d
	}
	*s = out
	return nil
}
