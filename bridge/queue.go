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

// putBack returns a batch taken earlier to the front of the changes; a
// check queued since keeps its newer status.
func (q *statusQueue) putBack(batch []messages.CheckStatus) {
	var front []uint64
	for _, cs := range batch {
		if _, ok := q.byID[cs.ID]; !ok {
			q.byID[cs.ID] = queued{status: cs, change: true}
			front = append(front, cs.ID)
		}
	}
	q.changes = append(front, q.changes...)
}

// take removes and returns up to n statuses: changes first, then
// refreshes while the batch holds fewer than refreshN; each lane oldest
// first.
func (q *statusQueue) take(n, refreshN int) []messages.CheckStatus {
	out := make([]messages.CheckStatus, 0, min(n, q.len()))
	q.changes = q.takeLane(q.changes, true, n, &out)
	q.refreshes = q.takeLane(q.refreshes, false, min(n, refreshN), &out)
	return out
}

// takeLane moves the lane's statuses to out until out holds n, and
// returns what remains of the lane's order.
func (q *statusQueue) takeLane(order []uint64, change bool, n int,
	out *[]messages.CheckStatus) []uint64 {

	i := 0
	for ; i < len(order) && len(*out) < n; i++ {
		e, ok := q.byID[order[i]]
		if !ok || e.change != change {
			continue // taken already, or moved to the other lane
		}
		*out = append(*out, e.status)
		delete(q.byID, order[i])
	}
	if i == len(order) {
		return order[:0]
	}
	return order[i:]
}
