package actors

import "time"

// The periodic full status is sent in slices spread over the notify
// interval, so that a large set of checks does not leave at once: at
// 100,000 checks one burst every 15s held a core for long enough that
// probes started up to a second late (README, Performance). Slices of
// 500 keep what a state change can meet ahead of it small, too: in the
// split deployment it waits behind the slice's JSON lines, to be encoded
// and decoded in turn, and a slice of 2,000 took over 10ms.
const (
	// periodicSliceChecks is the most statuses one slice aims to hold.
	periodicSliceChecks = 500
	// periodicMinGap is the shortest wait between two slices.
	periodicMinGap = 50 * time.Millisecond
)

// periodicRound is one round of the periodic full status: the IDs of the
// checks configured when it began, in ascending order, taken a slice at a
// time. Every check configured for a whole round is in it once; a check
// added during a round waits for the next (its first result is a state
// change, sent at once anyway). The zero value is a finished round.
type periodicRound struct {
	ids []uint64
	// next is the index of the first ID not yet taken.
	next int
	// size is the IDs a slice takes; gap is the wait between slices.
	size int
	gap  time.Duration
}

// newPeriodicRound starts a round over ids, in ascending order, spread
// over interval.
func newPeriodicRound(ids []uint64, interval time.Duration) periodicRound {
	n := periodicSlices(len(ids), interval)
	return periodicRound{
		ids:  ids,
		size: max(1, (len(ids)+n-1)/n),
		gap:  interval / time.Duration(n),
	}
}

// periodicSlices is how many slices a round of n checks takes: enough to
// keep each under periodicSliceChecks, as long as the slices stay
// periodicMinGap apart within interval; always at least one.
func periodicSlices(n int, interval time.Duration) int {
	want := (n + periodicSliceChecks - 1) / periodicSliceChecks
	most := int(interval / periodicMinGap)
	return max(1, min(want, most))
}

// done reports whether every ID of the round has been taken.
func (r *periodicRound) done() bool { return r.next >= len(r.ids) }

// take returns the next slice of IDs.
func (r *periodicRound) take() []uint64 {
	end := min(r.next+r.size, len(r.ids))
	s := r.ids[r.next:end]
	r.next = end
	return s
}
