package enginesim

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/lbhealth/hcsupervisor/bridge"
)

// Received is one notification as the Server received it.
type Received struct {
	// At is when the HealthState call that carried it arrived.
	At time.Time
	// Call numbers that HealthState call: the first is 1. Notifications
	// with the same Call arrived in one batch.
	Call uint64
	// Known tells whether a served check had the notification's ID. The
	// Engine ignores the others.
	Known bool
	// Notification is what was received.
	Notification bridge.Notification
}

// Counts counts what the Server has seen since New. Calls that fail are
// counted both as calls and in Errors.
type Counts struct {
	// Connections counts accepted connections.
	Connections uint64
	// Healthchecks and HealthState count calls of each RPC.
	Healthchecks uint64
	HealthState  uint64
	// Notifications counts the notifications of accepted HealthState
	// calls; UnknownIDs counts those of them with an unknown ID.
	Notifications uint64
	UnknownIDs    uint64
	// Errors counts calls answered with an error.
	Errors uint64
	// Hung counts calls held by SetHang. One whose connection goes
	// before SetHang(false) counts in Errors too.
	Hung uint64
	// Updates counts successful SetChecks calls.
	Updates uint64
}

// Snapshot is the Server's observable state at one moment. It is a copy,
// except Configs, which the caller must not modify.
type Snapshot struct {
	// Configs is the served set, as Healthchecks returns it: nil when
	// empty.
	Configs map[uint64]*bridge.Config
	// States holds the latest status of each served ID that has been
	// notified. Removing a check from the set forgets its state.
	States map[uint64]bridge.Status
	// Received holds the latest notifications, oldest first; at most
	// Config.History.
	Received []Received
	// Counts counts calls and notifications.
	Counts Counts
	// Open is the number of open connections.
	Open int
}

// observations is what the Server records. It is guarded by the Server's
// mutex.
type observations struct {
	states  map[uint64]bridge.Status
	history ring
	counts  Counts
	open    int
	batches uint64 // accepted HealthState calls

	// changed is closed, and replaced, whenever anything above changes.
	changed chan struct{}
}

// changedLocked wakes every WaitFor. The Server's mutex must be held.
func (o *observations) changedLocked() {
	close(o.changed)
	o.changed = make(chan struct{})
}

// ring keeps the latest notifications, at most its capacity.
type ring struct {
	buf   []Received
	start int // index of the oldest when full
	max   int
}

// add keeps x, dropping the oldest when full.
func (r *ring) add(x Received) {
	switch {
	case r.max <= 0:
	case len(r.buf) < r.max:
		r.buf = append(r.buf, x)
	default:
		r.buf[r.start] = x
		r.start = (r.start + 1) % r.max
	}
}

// items returns a copy, oldest first.
func (r *ring) items() []Received {
	out := make([]Received, 0, len(r.buf))
	out = append(out, r.buf[r.start:]...)
	return append(out, r.buf[:r.start]...)
}

// States returns the latest status of each served ID that has been
// notified. It is safe for concurrent use.
func (s *Server) States() map[uint64]bridge.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.obs.states)
}

// Received returns the latest Config.History notifications, oldest first.
// It is safe for concurrent use.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.obs.history.items()
}

// Counts returns the counts so far. It is safe for concurrent use.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.obs.counts
}

// Snapshot returns the observable state. It is safe for concurrent use.
func (s *Server) Snapshot() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked()
}

// snapshotLocked returns a Snapshot. The Server's mutex must be held.
func (s *Server) snapshotLocked() *Snapshot {
	return &Snapshot{
		Configs:  s.reg.configs,
		States:   maps.Clone(s.obs.states),
		Received: s.obs.history.items(),
		Counts:   s.obs.counts,
		Open:     s.obs.open,
	}
}

// WaitFor waits until cond holds for a snapshot, checking now and after
// every change: a call, a notification, a connection, SetChecks. It
// returns nil once cond holds, or ctx's error, wrapped, when ctx ends
// first. cond runs on WaitFor's goroutine without the Server's lock held;
// it may keep the snapshot. WaitFor is safe for concurrent use.
func (s *Server) WaitFor(ctx context.Context, cond func(*Snapshot) bool) error {
	for {
		s.mu.Lock()
		snap := s.snapshotLocked()
		changed := s.obs.changed
		s.mu.Unlock()

		if cond(snap) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for a condition: %w", ctx.Err())
		}
	}
}
