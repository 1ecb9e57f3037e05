package actors

import (
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

func TestPeriodicRound(t *testing.T) {
	tests := []struct {
		name       string
		checks     int
		interval   time.Duration
		wantSlices int
	}{
		{name: "empty", checks: 0, interval: 15 * time.Second, wantSlices: 1},
		{name: "few checks, one slice", checks: 10,
			interval: 15 * time.Second, wantSlices: 1},
		{name: "exactly one slice", checks: periodicSliceChecks,
			interval: 15 * time.Second, wantSlices: 1},
		{name: "one more than a slice", checks: periodicSliceChecks + 1,
			interval: 15 * time.Second, wantSlices: 2},
		{name: "100,000 checks", checks: 100_000,
			interval: 15 * time.Second, wantSlices: 200},
		{name: "short interval bounds the slices", checks: 100_000,
			interval: time.Second, wantSlices: 20},
		{name: "interval below the gap", checks: 100_000,
			interval: 10 * time.Millisecond, wantSlices: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			records := make(map[uint64]struct{}, tt.checks)
			ids := make([]uint64, tt.checks)
			for i := range tt.checks {
				ids[i] = uint64(i)*7 + 1
				records[ids[i]] = struct{}{}
			}
			r := newPeriodicRound(ids, tt.interval)
			if got, want := r.gap,
				tt.interval/time.Duration(tt.wantSlices); got != want {
				t.Errorf("gap = %v, want %v", got, want)
			}

			// Every ID once, ascending, in at most wantSlices slices.
			var prev uint64
			seen, slices := 0, 0
			for !r.done() {
				for _, id := range r.take() {
					if _, ok := records[id]; !ok || (seen > 0 && id <= prev) {
						t.Fatalf("slice %d: id %d unknown or out of order",
							slices, id)
					}
					prev = id
					seen++
				}
				slices++
			}
			if seen != tt.checks {
				t.Errorf("taken %d IDs, want %d", seen, tt.checks)
			}
			if tt.checks > 0 && slices != tt.wantSlices {
				t.Errorf("slices = %d, want %d", slices, tt.wantSlices)
			}
		})
	}
}

func TestPeriodicRoundZeroIsDone(t *testing.T) {
	var r periodicRound
	if !r.done() {
		t.Fatal("zero round is not done")
	}
	if got := r.take(); len(got) != 0 {
		t.Fatalf("zero round took %v", got)
	}
}

// TestManagerSpreadsPeriodicStatus runs more checks than one slice holds
// and reads a whole round of the periodic full status: every check once,
// in two slices, the second at least one slice gap after the first.
func TestManagerSpreadsPeriodicStatus(t *testing.T) {
	const (
		checks         = periodicSliceChecks + 500
		notifyInterval = 1500 * time.Millisecond
		gap            = notifyInterval / 2
	)
	h := newManagerHarness(t, func(c *ManagerConfig) {
		c.NotifyInterval = notifyInterval
		c.BatchSize = 2 * checks // one notifier batch per slice
	})
	ids := idRange(1, checks)
	h.update(configs(ids, 3*time.Second)...)
	h.waitStates(t, messages.StateHealthy, ids...)

	// Skip to the start of a round that began after every check had a
	// result: a periodic slice that begins at ID 1 and is not one of the
	// batches queued while the checks were still starting.
	drainSink(h.sink)
	first, at := h.nextPeriodic(t)
	for rounds := 0; first[0] != 1 || (len(first) < checks/2 && rounds < 3); {
		if first[0] == 1 {
			rounds++
		}
		first, at = h.nextPeriodic(t)
	}
	second, secondAt := h.nextPeriodic(t)

	if got, want := len(first), checks/2; got != want {
		t.Errorf("first slice holds %d statuses, want %d", got, want)
	}
	if got := secondAt.Sub(at); got < gap/2 {
		t.Errorf("second slice came %v after the first, want at least %v",
			got, gap/2)
	}
	seen := make(map[uint64]int)
	for _, id := range append(first, second...) {
		seen[id]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("check %d is in the round %d times, want once",
				id, seen[id])
		}
	}
}

// nextPeriodic returns the IDs of the next periodic batch, skipping state
// changes, and when it arrived.
func (h *managerHarness) nextPeriodic(t *testing.T) ([]uint64, time.Time) {
	t.Helper()
	for {
		b := h.sink.next(t)
		if !b.Periodic || len(b.Notifications) == 0 {
			continue
		}
		out := make([]uint64, len(b.Notifications))
		for i, n := range b.Notifications {
			out[i] = n.ID
		}
		return out, time.Now()
	}
}
