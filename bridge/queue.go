package bridge

import "github.com/lbhealth/hcsupervisor/messages"

// statusQueue holds statuses waiting for the Engine: at most one per
// check, the newest, in two lanes. Changes go before refreshes (the
// periodic full status and the resend after an outage), so that a state
// change never waits behind a fleet's worth of statuses the Engine
// already knows; within a lane, checks go in the order they entered it.
type statusQueue struct {
	byID map[uint64]queued
	// The lanes' orders; an ID whose entry is gone, or in the other
	// lane, is skipped when met.
	changes, refreshes []uint64
}

// queued is one check's waiting status and its lane.
type queued struct {
	status messages.CheckStatus
	change bool
}

func newStatusQueue() *statusQueue {
	return &statusQueue{byID: make(map[uint64]queued)}
}

func (q *statusQueue) len() int { return len(q.byID) }

// add queues state changes, each newer than any status queued for its
// check; a check waiting as a refresh moves to the changes.
func (q *statusQueue) add(batch []messages.CheckStatus) {
	for _, cs := range batch {
		if old, ok := q.byID[cs.ID]; !ok || !old.change {
			q.changes = append(q.changes, cs.ID)
		}
		q.byID[cs.ID] = queued{status: cs, change: true}
	}
}

// addRefresh queues statuses that change nothing, each newer than any
// queued for its check; a check waiting as a change stays one.
func (q *statusQueue) addRefresh(batch []messages.CheckStatus) {
	for _, cs := range batch {
		old, ok := q.byID[cs.ID]
		if !ok {
			q.refreshes = append(q.refreshes, cs.ID)
		}
		q.byID[cs.ID] = queued{status: cs, change: ok && old.change}
	}
}

// addOlder queues refreshes older than any status queued for the same
// check: a check already queued keeps its status.
func (q *statusQueue) addOlder(batch []messages.CheckStatus) {
	for _, cs := range batch {
		if _, ok := q.byID[cs.ID]; !ok {
			q.refreshes = append(q.refreshes, cs.ID)
			q.byID[cs.ID] = queued{status: cs}
		}
	}
}

// putBack returns a batch taken earlier, whose last refreshes statuses
// are refreshes (as take returned them), to the front of their lanes; a
// check queued since keeps its newer status.
func (q *statusQueue) putBack(batch []messages.CheckStatus, refreshes int) {
	split := len(batch) - refreshes
	q.changes = q.putBackLane(q.changes, batch[:split], true)
	q.refreshes = q.putBackLane(q.refreshes, batch[split:], false)
}

// putBackLane puts batch back at the front of the lane whose order is
// order, and returns the lane's new order.
func (q *statusQueue) putBackLane(order []uint64, batch []messages.CheckStatus,
	change bool) []uint64 {
	var front []uint64
	for _, cs := range batch {
		if _, ok := q.byID[cs.ID]; !ok {
			q.byID[cs.ID] = queued{status: cs, change: change}
			front = append(front, cs.ID)
		}
	}
	if len(front) == 0 {
		return order
	}
	return append(front, order...)
}

// take removes and returns up to n statuses: changes first, then
// refreshes while the batch holds fewer than refreshN; each lane oldest
// first. It also returns how many of them are refreshes. A check that
// busy reports true for (busy may be nil) is left queued, in its place.
func (q *statusQueue) take(n, refreshN int, busy func(uint64) bool) (
	out []messages.CheckStatus, refreshes int) {
	out = make([]messages.CheckStatus, 0,
		min(n, len(q.changes)+min(refreshN, len(q.refreshes))))
	q.changes = q.takeLane(q.changes, true, n, busy, &out)
	changes := len(out)
	q.refreshes = q.takeLane(q.refreshes, false, min(n, refreshN), busy, &out)
	return out, len(out) - changes
}

// takeLane moves the lane's statuses to out until out holds n, and
// returns what remains of the lane's order.
func (q *statusQueue) takeLane(order []uint64, change bool, n int,
	busy func(uint64) bool, out *[]messages.CheckStatus) []uint64 {

	kept := order[:0] // the busy checks met, in order
	i := 0
	for ; i < len(order) && len(*out) < n; i++ {
		id := order[i]
		e, ok := q.byID[id]
		if !ok || e.change != change {
			continue // taken already, or moved to the other lane
		}
		if busy != nil && busy(id) {
			kept = append(kept, id)
			continue
		}
		*out = append(*out, e.status)
		delete(q.byID, id)
	}
	switch {
	case len(kept) > 0:
		// Move the kept IDs up to what remains, in place.
		start := i - len(kept)
		copy(order[start:i], kept)
		return order[start:]
	case i == len(order):
		return order[:0]
	}
	return order[i:]
}

// snapshotGuard keeps a snapshot of every check's status from telling the
// Engine an old state after a new one. The manager reads a snapshot while
// the checks run, so a notification passed on while the snapshot was on
// its way can be newer than the snapshot's status of the same check.
// While snapshots are pending, the guard notes the newest LastCheck passed
// on per check; a snapshot's older statuses are then dropped.
type snapshotGuard struct {
	pending int
	// seen maps a check ID to the newest LastCheck, in Unix nanoseconds,
	// passed on since the oldest pending snapshot was asked for.
	seen map[uint64]int64
}

// asked notes that a snapshot was asked for.
func (g *snapshotGuard) asked() {
	if g.pending == 0 {
		g.seen = make(map[uint64]int64)
	}
	g.pending++
}

// passed notes statuses passed on towards the Engine.
func (g *snapshotGuard) passed(batch []messages.CheckStatus) {
	if g.pending == 0 {
		return
	}
	for _, cs := range batch {
		if at := cs.Status.LastCheck.UnixNano(); at > g.seen[cs.ID] {
			g.seen[cs.ID] = at
		}
	}
}

// answered takes a snapshot that was asked for, or nil when the request
// failed, and returns the statuses worth passing on: those with a known,
// confirmed state that nothing newer overtook.
func (g *snapshotGuard) answered(snapshot []messages.CheckStatus) []messages.CheckStatus {
	var out []messages.CheckStatus
	for _, cs := range snapshot {
		at, ok := g.seen[cs.ID]
		if cs.Status.State == messages.StateUnknown || cs.Status.Unconfirmed ||
			ok && cs.Status.LastCheck.UnixNano() < at {
			continue
		}
		out = append(out, cs)
	}
	if g.pending > 0 {
		g.pending--
	}
	if g.pending == 0 {
		g.seen = nil
	}
	return out
}

// cancel forgets every pending snapshot, as when the connection that
// would answer them is lost.
func (g *snapshotGuard) cancel() {
	g.pending, g.seen = 0, nil
}
