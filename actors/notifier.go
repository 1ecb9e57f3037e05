package actors

import (
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

// Defaults of NotifierConfig, as Seesaw's -batch_size and -batch_delay.
const (
	DefaultBatchSize  = 100
	DefaultBatchDelay = 100 * time.Millisecond
)

// NotifierStats counts what a notifier did. Its fields are safe to read
// concurrently with the notifier running.
type NotifierStats struct {
	// Queued counts notifications received.
	Queued atomic.Uint64
	// Coalesced counts notifications replaced by a newer one for the same
	// check within a batch.
	Coalesced atomic.Uint64
	// Sent counts notifications handed to the sink, in Batches batches.
	Sent    atomic.Uint64
	Batches atomic.Uint64
	// Undelivered counts notifications that had no live sink to go to.
	Undelivered atomic.Uint64
}

// NotifierConfig configures a notifier.
type NotifierConfig struct {
	// Sink receives every *messages.NotificationBatch. The notifier
	// watches it and counts (and logs) what it could not deliver after the
	// sink died.
	Sink *actor.PID
	// BatchSize is the most notifications in one batch. Default 100.
	BatchSize int
	// BatchDelay is the longest a notification waits for its batch to fill.
	// Default 100ms.
	BatchDelay time.Duration
	// Stats and Telemetry, if set, are updated as the notifier works.
	Stats     *NotifierStats
	Telemetry *Telemetry
	// Logger receives the notifier's log lines.
	Logger zerolog.Logger
}

// notifier batches notifications: a batch goes to the sink when it holds
// BatchSize notifications or BatchDelay after its first one, whichever
// comes first. Notifications for one check coalesce within a batch to the
// newest, at the place of the first.
//
// It accepts *messages.CheckStatus (one notification) and
// *messages.NotificationBatch (many; the manager's periodic full status is
// marked Periodic and passes through at once, see forwardPeriodic), and
// sends *messages.NotificationBatch to the sink. It flushes what it holds
// when it stops.
type notifier struct {
	unexpected unexpected
	cfg        NotifierConfig
	stats      *NotifierStats
	log        zerolog.Logger

	batch []messages.CheckStatus
	// index maps a check ID to its position in batch.
	index map[uint64]int
	// changed maps a check ID to the LastCheck (in Unix nanoseconds) of
	// its newest change since the last periodic status; see
	// forwardPeriodic.
	changed map[uint64]int64

	timer    *time.Timer
	timerGen uint64
	sinkDead bool
}

// flushTick says the current batch's delay is up.
type flushTick struct {
	gen uint64
}

// IgnoreDeadLetterLogging keeps a tick that outlives its notifier out of
// the dead-letter log.
func (*flushTick) IgnoreDeadLetterLogging() {}

// NewNotifier returns the props of a notifier; zero fields of cfg take
// their defaults.
func NewNotifier(cfg NotifierConfig) *actor.Props {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchDelay <= 0 {
		cfg.BatchDelay = DefaultBatchDelay
	}
	if cfg.Stats == nil {
		cfg.Stats = &NotifierStats{}
	}
	n := &notifier{
		cfg:     cfg,
		stats:   cfg.Stats,
		log:     cfg.Logger.With().Str("actor", "notifier").Logger(),
		index:   make(map[uint64]int),
		changed: make(map[uint64]int64),
	}
	// NOTE: every incarnation is the same value, so a restart keeps the
	// batch; Restarting flushes it anyway.
	return actor.PropsFromProducer(func() actor.Actor { return n })
}

// Receive handles one message.
func (n *notifier) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *messages.CheckStatus:
		n.add(c, *m)
	case *messages.NotificationBatch:
		if m.Periodic {
			n.forwardPeriodic(c, m.Notifications)
			return
		}
		for _, cs := range m.Notifications {
			n.add(c, cs)
		}
	case *messages.Crash:
		panic(m.Reason)
	case *flushTick:
		if m.gen == n.timerGen {
			n.flush(c)
		}
	case *actor.Started:
		if n.cfg.Sink != nil {
			c.Watch(n.cfg.Sink)
		}
	case *actor.Terminated:
		n.handleTerminated(m)
	case *actor.Stopping, *actor.Restarting:
		n.flush(c)
		if n.cfg.Sink != nil && !n.sinkDead {
			c.Unwatch(n.cfg.Sink)
		}
	case *actor.Stopped:
	default:
		n.unexpected.log(n.log, m)
	}
}

func (n *notifier) add(c actor.Context, cs messages.CheckStatus) {
	n.stats.Queued.Add(1)
	n.changed[cs.ID] = cs.Status.LastCheck.UnixNano()
	if i, ok := n.index[cs.ID]; ok {
		n.batch[i] = cs
		n.stats.Coalesced.Add(1)
		return
	}
	n.index[cs.ID] = len(n.batch)
	n.batch = append(n.batch, cs)

	switch {
	case len(n.batch) >= n.cfg.BatchSize:
		n.flush(c)
	case len(n.batch) == 1:
		n.armFlush(c)
	}
}

func (n *notifier) armFlush(c actor.Context) {
	n.timerGen++
	tick := &flushTick{gen: n.timerGen}
	self, root := c.Self(), c.ActorSystem().Root
	n.timer = time.AfterFunc(n.cfg.BatchDelay, func() {
		root.Send(self, tick)
	})
}

// flush sends the batch, if any, to the sink.
func (n *notifier) flush(c actor.Context) {
	if n.timer != nil {
		n.timer.Stop()
		n.timer = nil
		n.timerGen++
	}
	if len(n.batch) == 0 {
		return
	}
	batch := &messages.NotificationBatch{Notifications: n.batch}
	n.batch = make([]messages.CheckStatus, 0, len(n.batch))
	clear(n.index)
	n.send(c, batch)
}

// forwardPeriodic sends the periodic full status on at once, in batches
// of BatchSize marked Periodic. They hold no change, so they need no
// batching delay, and they share no batch with a change, which a sink
// with a backlog sends first.
//
// The manager reads the statuses from the records while the checks run,
// so a change can overtake the periodic status it sent: a status older
// than a change seen already is dropped, or the Engine would be told the
// old state after the new. A check whose change waits in the current
// batch takes a newer periodic status there instead.
func (n *notifier) forwardPeriodic(c actor.Context, statuses []messages.CheckStatus) {
	n.stats.Queued.Add(uint64(len(statuses)))
	changed := n.changed
	// Changes before this status need no memory beyond it: the next one
	// is read after them. Those still pending stay remembered.
	n.changed = make(map[uint64]int64, len(n.index))
	for id := range n.index {
		n.changed[id] = changed[id]
	}
	out := statuses
	if n.overtaken(changed, statuses) {
		out = make([]messages.CheckStatus, 0, len(statuses))
		for _, cs := range statuses {
			if at, ok := changed[cs.ID]; ok && cs.Status.LastCheck.UnixNano() < at {
				n.stats.Coalesced.Add(1)
				continue
			}
			if i, ok := n.index[cs.ID]; ok {
				n.batch[i] = cs
				n.stats.Coalesced.Add(1)
				continue
			}
			out = append(out, cs)
		}
	}
	// Slices of out, capped so that no receiver can append into the next.
	for len(out) > 0 {
		k := min(len(out), n.cfg.BatchSize)
		n.send(c, &messages.NotificationBatch{Notifications: out[:k:k],
			Periodic: true})
		out = out[k:]
	}
}

// overtaken reports whether a change seen already, or waiting in the
// batch, concerns any of statuses: when none does, as is usual, the
// periodic status goes on as it came, without a copy.
func (n *notifier) overtaken(changed map[uint64]int64,
	statuses []messages.CheckStatus) bool {
	if len(changed) == 0 && len(n.index) == 0 {
		return false
	}
	for _, cs := range statuses {
		if _, ok := changed[cs.ID]; ok {
			return true
		}
		if _, ok := n.index[cs.ID]; ok {
			return true
		}
	}
	return false
}

// send hands batch to the sink.
func (n *notifier) send(c actor.Context, batch *messages.NotificationBatch) {
	count := uint64(len(batch.Notifications))
	if n.cfg.Sink == nil || n.sinkDead {
		n.stats.Undelivered.Add(count)
		n.log.Error().Int("notifications", int(count)).Msg("no_sink_for_batch")
		return
	}
	c.Send(n.cfg.Sink, batch)
	n.cfg.Telemetry.batchSent(int(count))
	n.stats.Batches.Add(1)
	n.stats.Sent.Add(count)
}

func (n *notifier) handleTerminated(m *actor.Terminated) {
	if n.cfg.Sink != nil && m.Who.Equal(n.cfg.Sink) {
		n.sinkDead = true
		n.log.Error().Str("sink", m.Who.Id).Msg("sink_terminated")
	}
}
