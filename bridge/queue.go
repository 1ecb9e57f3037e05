package bridge

import "github.com/lbhealth/hcsupervisor/messages"

// statusQueue holds statuses waiting for the Engine: at most one per
// check, the newest, in the order their checks first entered the queue.
type statusQueue struct {
	order []uint64
	byID  map[uint64]messages.CheckStatus
}

func newStatusQueue() *statusQueue {
	return &statusQueue{byID: make(map[uint64]messages.CheckStatus)}
}

func (q *statusQueue) len() int { return len(q.order) }

// add queues statuses newer than any queued for the same check.
func (q *statusQueue) add(batch []messages.CheckStatus) {
	for _, cs := range batch {
		if _, ok := q.byID[cs.ID]; !ok {
			q.order = append(q.order, cs.ID)
		}
		q.byID[cs.ID] = cs
	}
}

// addOlder queues statuses older than any queued for the same check: a
// check already queued keeps its status.
func (q *statusQueue) addOlder(batch []messages.CheckStatus) {
	for _, cs := range batch {
		if _, ok := q.byID[cs.ID]; !ok {
			q.order = append(q.order, cs.ID)
			q.byID[cs.ID] = cs
		}
	}
}

// putBack returns a batch taken earlier to the front of the queue; a check
// queued since keeps its newer status.
func (q *statusQueue) putBack(batch []messages.CheckStatus) {
	var front []uint64
	for _, cs := range batch {
		if _, ok := q.byID[cs.ID]; !ok {
			q.byID[cs.ID] = cs
			front = append(front, cs.ID)
		}
	}
	q.order = append(front, q.order...)
}

// take removes and returns up to n statuses, oldest first.
func (q *statusQueue) take(n int) []messages.CheckStatus {
	n = min(n, len(q.order))
	out := make([]messages.CheckStatus, n)
	for i, id := range q.order[:n] {
		out[i] = q.byID[id]
		delete(q.byID, id)
	}
	q.order = q.order[n:]
	return out
}
