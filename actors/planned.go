package actors

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

// probeOverrunGrace is how long past its timeout a probe may return
// before it is logged as ignoring its cancellation. Probers honour their
// context, so only a misbehaving one is logged.
const probeOverrunGrace = 5 * time.Second

// A plannedProbe goes from armed to running, when it starts, or to
// dropped, when its check drops it first; a running probe that its check
// drops is cancelled.
const (
	planArmed int32 = iota
	planRunning
	planDropped
)

// plannedProbe is one probe of a check, from the moment the check plans
// it until its result is back. The check arms it on the manager's clock;
// when it falls due the clock starts it, on a worker, and the result
// returns to the check as its done message. So a probe costs its check
// one message, its result, and the check alone decides what happens next.
//
// The check sets its fields before arming it. Then only its starter
// writes it, on the clock's goroutine or, for a probe with a fault
// queued, the check's: slotHeld, timeout, ctx and cancel before state
// says it runs, base and prober after; only state is shared with the
// check until the result, which carries base back to the check.
type plannedProbe struct {
	state atomic.Int32
	// due is when the probe is planned to start, its jitter included.
	due time.Time
	// base is the check's prober, or nil until the probe builds it as it
	// starts; prober is what runs, base or base with a fault.
	base    Prober
	prober  Prober
	timeout time.Duration
	self    *actor.PID
	root    *actor.RootContext
	env     *checkEnv
	rec     *checkRecord
	entry   *clockEntry
	// slotHeld says the start limiter's slot for it is taken; only its
	// starter uses it, the clock's mutex ordering each start after the
	// last.
	slotHeld bool

	ctx    context.Context
	cancel context.CancelFunc
	done   probeDone
}

// armed reports whether the probe has neither started nor been dropped.
func (p *plannedProbe) armed() bool { return p.state.Load() == planArmed }

// disarm drops the probe unless it has started, and reports whether it
// did.
func (p *plannedProbe) disarm() bool {
	return p.state.CompareAndSwap(planArmed, planDropped)
}

// drop drops the probe, cancelling it if it runs.
func (p *plannedProbe) drop() {
	if p.state.Swap(planDropped) == planRunning {
		p.cancel()
	}
}

// fire is the clock's job for the probe as it falls due, on the clock's
// goroutine. A probe with a fault queued goes to its check as a
// *probeTick instead, so that an injected panic happens in the check's
// Receive.
func (p *plannedProbe) fire() {
	if !p.armed() {
		return
	}
	if p.rec.faulty.Load() {
		p.root.Send(p.self, &probeTick{plan: p})
		return
	}
	p.start()
}

// start runs the probe on a worker now, or once the start limiter's slot
// for it comes. It takes the check's timeout as the probe starts, so a
// new timeout needs no new plan.
func (p *plannedProbe) start() {
	if !p.armed() {
		return
	}
	if !p.slotHeld && p.env.limiter != nil {
		now := time.Now()
		if wait := p.env.limiter.reserve(now); wait > 0 {
			p.slotHeld = true
			p.env.clock.reschedule(p.entry, now.Add(wait), p)
			return
		}
	}
	p.timeout = p.rec.timing().timeout
	p.ctx, p.cancel = context.WithTimeout(context.Background(), p.timeout)
	if !p.state.CompareAndSwap(planArmed, planRunning) {
		p.cancel() // dropped meanwhile
		return
	}

	// It runs: nothing it takes now, a fault or a built prober, is lost
	// to a probe that never runs.
	if p.base == nil {
		p.base = p.build()
	}
	p.prober = p.base
	if f, ok := p.rec.takeFault(messages.FaultHang, messages.FaultError,
		messages.FaultSlow, messages.FaultFlap); f != "" {
		p.prober = faultyProber{next: p.base, fault: f, flapOK: ok}
	}
	p.env.workers.run(p)
}

// build builds the check's prober for its first probe: as it starts, not
// as it is configured, so that applying a fleet's configs builds none.
// A prober that cannot be built, or whose builder panics (on the
// clock's goroutine, a panic would take down the process), is
// replaced by one that reports why on every probe, instead of the check
// silently never running.
func (p *plannedProbe) build() (pr Prober) {
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("building the prober panicked: %v", r)
			}
		}()
		pr, err = p.rec.newProber(p.env.newProber)
	}()
	if err != nil {
		p.rec.event(p.env.logger, zerolog.ErrorLevel).Err(err).
			Msg("prober_unavailable")
		return failingProber{err: err}
	}
	return pr
}

// run runs the probe on its worker and sends the result to the check,
// unless the check dropped it meanwhile.
func (p *plannedProbe) run() {
	p.done.result, p.done.panicked = runProbe(p.ctx, p.prober)
	p.cancel()
	if late := p.done.result.Duration - p.timeout; late > probeOverrunGrace {
		p.rec.event(p.env.logger, zerolog.ErrorLevel).
			Dur("late", late).Msg("probe_ignores_cancel")
	}
	if p.state.Load() == planRunning {
		p.root.Send(p.self, &p.done)
	}
}

// runProbe runs one probe and times it. A panic in the prober is caught
// and returned, because a panic in a goroutine the actor starts would take
// the process down; the actor re-raises it where its supervisor sees it.
func runProbe(ctx context.Context, p Prober) (res messages.ProbeResult, panicked any) {
	start := time.Now()
	defer func() {
		if panicked = recover(); panicked != nil {
			res = messages.ProbeResult{
				Message: fmt.Sprintf("probe panicked: %v", panicked),
			}
		}
		res.Start = start
		res.Duration = time.Since(start)
	}()
	return p.Probe(ctx), nil
}
