package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lbhealth/hcsupervisor/messages"
)

// healthCall is a HealthState call in flight and the statuses it carries.
type healthCall struct {
	*call
	batch []messages.CheckStatus
	// refreshes is how many of batch are refreshes.
	refreshes int
	// ids holds the checks of batch, built when first asked.
	ids map[uint64]bool
}

// has reports whether the call carries a status of check id.
func (hc *healthCall) has(id uint64) bool {
	if hc.ids == nil {
		hc.ids = make(map[uint64]bool, len(hc.batch))
		for _, cs := range hc.batch {
			hc.ids[cs.ID] = true
		}
	}
	return hc.ids[id]
}

// busy returns a function that reports whether a check is in hc, for
// statusQueue.take; nil when hc is.
func (hc *healthCall) busy() func(uint64) bool {
	if hc == nil {
		return nil
	}
	return hc.has
}

// send starts HealthState calls with the oldest pending statuses, unless
// a retry is waiting. The main call takes changes first, then
// refreshes. While it carries refreshes, a second call, the rush, takes
// the changes that came since: so a state change never waits behind
// statuses the Engine already has, however slowly the Engine takes them.
// No check is in both calls at once, so the Engine never hears a check's
// older status after its newer.
func (e *edge) send() {
	defer e.storePending()
	if e.sendTimer != nil || e.pending.len() == 0 {
		return
	}
	if e.main == nil {
		batch, refreshes := e.pending.take(maxPerCall, maxRefreshPerCall,
			e.rush.busy())
		if len(batch) > 0 {
			e.main = e.startHealthState(batch, refreshes)
		}
	}
	if e.rush == nil && e.main != nil && e.main.refreshes > 0 {
		batch, _ := e.pending.take(maxPerCall, 0, e.main.busy())
		if len(batch) > 0 {
			e.rush = e.startHealthState(batch, 0)
		}
	}
}

// storePending sets EdgeStats.Pending: the statuses queued and those in
// calls in flight, which the Engine has not confirmed yet.
func (e *edge) storePending() {
	n := e.pending.len()
	for _, hc := range []*healthCall{e.main, e.rush} {
		if hc != nil {
			n += len(hc.batch)
		}
	}
	e.cfg.Stats.Pending.Store(int64(n))
}

// startHealthState tells the Engine batch in a call of its own.
func (e *edge) startHealthState(batch []messages.CheckStatus,
	refreshes int) *healthCall {
	engine := e.cfg.Engine
	cl := e.run(func(ctx context.Context, cl *call) any {
		return &sent{call: cl, err: engine.HealthState(ctx, batch)}
	})
	return &healthCall{call: cl, batch: batch, refreshes: refreshes}
}

func (e *edge) handleSendDue(m *sendDue) {
	if m.timer != e.sendTimer {
		e.log.Debug().Msg("stale_send_timer_dropped")
		return
	}
	e.sendTimer = nil
	e.send()
}

func (e *edge) handleSent(c actor.Context, m *sent) {
	var hc *healthCall
	switch {
	case e.main != nil && m.call == e.main.call:
		hc, e.main = e.main, nil
	case e.rush != nil && m.call == e.rush.call:
		hc, e.rush = e.rush, nil
	default:
		e.log.Debug().Err(m.err).Msg("stale_health_state_dropped")
		return
	}
	e.cfg.Stats.HealthStates.Add(1)
	if m.err != nil {
		e.handleSendFailed(hc, m.err)
		return
	}
	if e.sendTimer != nil {
		// The other call of this round failed while this one was in
		// flight. The Engine answers, so after the first failed round
		// the retry goes at once. After more, the batch that failed may
		// be what the Engine cannot take: the retry waits, and the
		// failures still count, or such a batch would be sent again
		// each time the other call succeeds and never raise the alarm.
		if e.failures == 1 {
			e.sendTimer.stop()
			e.sendTimer = nil
		}
		e.send()
		return
	}
	if e.failures >= e.cfg.MaxFailures {
		e.log.Warn().Int("failed_calls", e.failures).Msg("engine_recovered")
		e.resendAll(c)
	}
	e.failures = 0
	e.cfg.Stats.Unreachable.Store(false)
	e.send()
}

// handleSendFailed puts the failed call's batch back behind newer
// statuses and retries it later: after RetryDelay at first, then with
// exponential backoff once MaxFailures rounds in a row have failed. A
// call still in flight may end meanwhile; no other starts until the
// retry. Two calls failing in one round count as one failure.
func (e *edge) handleSendFailed(hc *healthCall, err error) {
	e.cfg.Stats.HealthStateErr.Add(1)
	e.pending.putBack(hc.batch, hc.refreshes)
	e.storePending()
	if e.sendTimer != nil {
		// The other call of the same round failed first: one failure
		// of the Engine, counted once, with one retry.
		e.log.Debug().Err(err).Msg("health_state_failed_in_the_same_round")
		return
	}
	e.failures++
	delay := e.retryDelay()
	switch {
	case e.failures == e.cfg.MaxFailures:
		e.cfg.Stats.Unreachable.Store(true)
		e.log.Error().Err(err).Int("failed_calls", e.failures).
			Int("pending", e.pending.len()).Dur("retry_in", delay).
			Msg("engine_unreachable_keeping_newest_states")
		if e.cfg.OnMaxFailures != nil {
			e.cfg.OnMaxFailures(fmt.Errorf("%d HealthState calls failed: %w",
				e.failures, err))
		}
	case e.failures > e.cfg.MaxFailures:
		e.log.Error().Err(err).Int("failed_calls", e.failures).
			Int("pending", e.pending.len()).Dur("retry_in", delay).
			Msg("engine_still_unreachable")
	default:
		e.log.Warn().Err(err).Int("failed_calls", e.failures).
			Dur("retry_in", delay).Msg("health_state_failed")
	}
	e.armSend(delay)
}

func (e *edge) retryDelay() time.Duration {
	over := e.failures - e.cfg.MaxFailures
	if over < 0 {
		return e.cfg.RetryDelay
	}
	delay := e.cfg.RetryDelay
	for range min(over+1, 30) {
		delay *= 2
		if delay >= e.cfg.MaxBackoff {
			return e.cfg.MaxBackoff
		}
	}
	return delay
}
