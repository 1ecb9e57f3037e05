package actors

import "github.com/lbhealth/hcsupervisor/messages"

// maxBacklogReplies bounds the replies held for one slow client; beyond
// it replies are dropped and counted.
const maxBacklogReplies = 1000

// backlog holds what a slow client's queue could not take: its replies in
// order, and the newest notification of each check. It never holds two
// notifications of one check, so it is bounded by the number of checks.
type backlog struct {
	replies [][]byte
	order   []uint64
	notes   map[uint64]messages.CheckStatus
}

func (b *backlog) empty() bool {
	return len(b.replies) == 0 && len(b.order) == 0
}

// addReply holds a reply; it reports false when the backlog is full.
func (b *backlog) addReply(line []byte) bool {
	if len(b.replies) >= maxBacklogReplies {
		return false
	}
	b.replies = append(b.replies, line)
	return true
}

// addNotes holds notifications, each replacing an older one of its
// check; it returns how many it replaced.
func (b *backlog) addNotes(batch []messages.CheckStatus) (superseded int) {
	if b.notes == nil {
		b.notes = make(map[uint64]messages.CheckStatus)
	}
	for _, cs := range batch {
		if _, ok := b.notes[cs.ID]; ok {
			superseded++
		} else {
			b.order = append(b.order, cs.ID)
		}
		b.notes[cs.ID] = cs
	}
	return superseded
}

// takeNotes empties the notifications into one batch, oldest first.
func (b *backlog) takeNotes() *messages.NotificationBatch {
	batch := &messages.NotificationBatch{
		Notifications: make([]messages.CheckStatus, len(b.order)),
	}
	for i, id := range b.order {
		batch.Notifications[i] = b.notes[id]
	}
	b.order = b.order[:0]
	clear(b.notes)
	return batch
}
