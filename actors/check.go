package actors

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

// probeStopGrace bounds how long a stopping check waits for its cancelled
// probe to return. Probes honour cancellation, so this is only reached by
// a misbehaving prober; the wait is logged.
const probeStopGrace = 5 * time.Second

// Prober runs one configured probe; see package probe for the contract.
type Prober interface {
	Probe(ctx context.Context) messages.ProbeResult
}

// checkEnv is what every check of one manager shares.
type checkEnv struct {
	notifier  *actor.PID
	newProber func(*messages.Config) (Prober, error)
	telemetry *Telemetry
	limiter   *startLimiter
	workers   *probeWorkers
	jitter    float64
	logger    zerolog.Logger
}

// checkActor runs one healthcheck: it probes its target every interval,
// one probe at a time, and tells the notifier when the state changes.
//
// It accepts *updateCheck (a new config from the manager), and its own
// *probeTick and *probeDone. It sends *messages.CheckStatus to the
// notifier. The probe itself runs in a goroutine the actor owns, so
// Receive never blocks on the network.
type checkActor struct {
	unexpected unexpected
	rec        *checkRecord
	env        *checkEnv

	self *actor.PID
	root *actor.RootContext

	// prober is built at the first probe, or nil.
	prober Prober
	// planned is when the current or next probe is due, on the phase of
	// interval; due is planned plus its jitter, and slotHeld says the
	// start limiter's slot for it is taken.
	planned  time.Time
	due      time.Time
	interval time.Duration
	slotHeld bool
	timer    *time.Timer
	// tickGen tells the current timer's tick from stale ones; it comes
	// from the record's sequence, like probeSeq.
	tickGen uint64
	// probe is the probe in flight, or nil.
	probe *inflight
	// probeSeq tells the current probe's result from stale ones.
	probeSeq uint64
}

// inflight is a running probe.
type inflight struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// updateCheck hands a check its new config.
type updateCheck struct {
	Config messages.Config
}

// probeTick says a probe is due.
type probeTick struct {
	gen uint64
}

// probeDone carries a finished probe's result back to its check, or the
// value its prober panicked with.
type probeDone struct {
	seq      uint64
	result   messages.ProbeResult
	panicked any
}

// IgnoreDeadLetterLogging keeps ticks and results that arrive after their
// check stopped out of the dead-letter log.
func (*probeTick) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see probeTick.
func (*probeDone) IgnoreDeadLetterLogging() {}

func newCheckProps(rec *checkRecord, env *checkEnv) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &checkActor{rec: rec, env: env}
	})
}

// Receive handles one message.
func (a *checkActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *probeTick:
		a.handleTick(m)
	case *probeDone:
		a.handleDone(c, m)
	case *updateCheck:
		a.handleUpdate(m)
	case *messages.RequestStatus:
		c.Respond(&messages.CheckStatus{ID: a.rec.id, Status: a.rec.reply(time.Now())})
	case *actor.Started:
		a.handleStarted(c)
	case *actor.Restarting:
		a.rec.restarted()
		a.halt()
	case *actor.Stopping:
		a.halt()
	case *actor.Stopped, *actor.Restart:
	default:
		a.unexpected.log(a.logger(), m)
	}
}

func (a *checkActor) handleStarted(c actor.Context) {
	a.self = c.Self()
	a.root = c.ActorSystem().Root
	a.replan(a.rec.config().Interval)
}

// logger returns a logger with the check's fields, for the unexpected
// messages' throttled lines.
//
// NOTE: the check's lines take its fields when written (see event)
// rather than from a sub-logger kept per check: 100,000 kept sub-loggers
// held 60 MB of heap (tests/load) that the collector had to mark, for the
// few lines a check writes at info.
func (a *checkActor) logger() zerolog.Logger {
	cfg := a.rec.config()
	return withCheck(a.env.logger.With(), &cfg).Logger()
}

// event starts a line at level with the check's fields, or returns nil
// (on which zerolog's methods do nothing) when level is disabled, as
// debug is for every probe.
func (a *checkActor) event(level zerolog.Level) *zerolog.Event {
	e := a.env.logger.WithLevel(level)
	if e == nil {
		return nil
	}
	cfg := a.rec.config()
	return addCheck(e, &cfg)
}

// addCheck adds a check's fields to a log line.
func addCheck(e *zerolog.Event, cfg *messages.Config) *zerolog.Event {
	return e.Uint64("id", cfg.ID).Str("checker", string(cfg.Checker)).
		Str("target", cfg.Target())
}

// withCheck adds a check's fields to a logger's context.
func withCheck(c zerolog.Context, cfg *messages.Config) zerolog.Context {
	return c.Uint64("id", cfg.ID).Str("checker", string(cfg.Checker)).
		Str("target", cfg.Target())
}

func (a *checkActor) buildProber(cfg *messages.Config) Prober {
	p, err := a.env.newProber(cfg)
	if err != nil {
		a.event(zerolog.ErrorLevel).Err(err).Msg("prober_unavailable")
		return failingProber{err: err}
	}
	return p
}

func (a *checkActor) handleUpdate(m *updateCheck) {
	old := a.rec.config()
	if a.rec.setConfig(m.Config) {
		if old.Interval != m.Config.Interval {
			a.replan(m.Config.Interval)
		}
		return
	}

	// A different probe: drop the one in flight and start afresh.
	a.event(zerolog.InfoLevel).Str("config", m.Config.String()).
		Msg("probe_changed")
	a.cancelProbe()
	a.prober = nil // for the new target
	a.replan(m.Config.Interval)
}

// replan moves the next probe onto the phase of a new interval, unless a
// probe is in flight: handleDone then sees the new interval and replans.
func (a *checkActor) replan(interval time.Duration) {
	if a.probe != nil {
		return
	}
	a.interval = interval
	a.planned = firstRun(a.rec.id, interval, time.Now())
	a.arm()
}

// arm sets the timer for a.planned plus jitter, replacing any earlier
// one.
func (a *checkActor) arm() {
	a.due = a.planned.Add(jitterOffset(a.interval, a.env.jitter))
	a.slotHeld = false
	a.armAt(a.due)
}

// armAt sets the timer for at, replacing any earlier one.
func (a *checkActor) armAt(at time.Time) {
	a.stopTimer()
	a.tickGen = a.rec.seq.Add(1)
	tick := &probeTick{gen: a.tickGen}
	self, root := a.self, a.root
	a.timer = time.AfterFunc(time.Until(at), func() {
		root.Send(self, tick)
	})
}

func (a *checkActor) stopTimer() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
}

func (a *checkActor) handleTick(m *probeTick) {
	if m.gen != a.tickGen || a.probe != nil {
		return
	}
	a.timer = nil
	if !a.slotHeld {
		now := time.Now()
		if wait := a.env.limiter.reserve(now); wait > 0 {
			a.slotHeld = true
			a.armAt(now.Add(wait))
			return
		}
	}
	a.slotHeld = false
	if f, _ := a.rec.takeFault(messages.FaultPanic); f != "" {
		panic("injected fault: panic")
	}
	a.startProbe()
}

// startProbe runs the prober in a goroutine bounded by the timeout. The
// goroutine reports back with a message; it never touches the actor.
func (a *checkActor) startProbe() {
	cfg := a.rec.config()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	a.probeSeq = a.rec.seq.Add(1)
	p := &inflight{cancel: cancel, done: make(chan struct{})}
	a.probe = p

	done := &probeDone{seq: a.probeSeq}
	if a.prober == nil {
		a.prober = a.buildProber(&cfg)
	}
	var prober Prober = a.prober
	if f, ok := a.rec.takeFault(messages.FaultHang, messages.FaultError,
		messages.FaultSlow, messages.FaultFlap); f != "" {
		prober = faultyProber{next: prober, fault: f, flapOK: ok}
	}
	self, root := a.self, a.root
	a.env.workers.run(func() {
		defer close(p.done)
		defer cancel()
		done.result, done.panicked = runProbe(ctx, prober)
		root.Send(self, done)
	})
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

func (a *checkActor) handleDone(c actor.Context, m *probeDone) {
	if a.probe == nil || m.seq != a.probeSeq {
		return
	}
	a.probe = nil
	if m.panicked != nil {
		panic(m.result.Message)
	}

	st, prev, changed := a.rec.record(m.result)
	// Only this actor changes the config while it runs: one copy serves.
	cfg := a.rec.config()
	a.env.telemetry.probeDone(cfg.Checker, m.result, m.result.Start.Sub(a.due))
	a.event(zerolog.DebugLevel).Bool("success", m.result.Success).
		Dur("duration", m.result.Duration).
		Str("result", m.result.Message).Msg("probe_done")
	if changed {
		a.event(zerolog.InfoLevel).Str("old_state", prev.String()).
			Str("new_state", st.State.String()).
			Str("result", st.Message).
			Dur("duration", m.result.Duration).Msg("state_changed")
		c.Send(a.env.notifier, &messages.CheckStatus{ID: a.rec.id, Status: st})
	}

	now := time.Now()
	if cfg.Interval != a.interval {
		a.interval = cfg.Interval
		a.planned = firstRun(a.rec.id, a.interval, now)
	} else {
		a.planned = nextRun(a.planned, a.interval, now)
	}
	a.arm()
}

// halt stops the timer and the probe in flight, waiting for the probe's
// goroutine so that none outlives its actor.
func (a *checkActor) halt() {
	a.stopTimer()
	a.cancelProbe()
}

func (a *checkActor) cancelProbe() {
	p := a.probe
	if p == nil {
		return
	}
	a.probe = nil
	p.cancel()
	select {
	case <-p.done:
	case <-time.After(probeStopGrace):
		a.event(zerolog.ErrorLevel).Dur("waited", probeStopGrace).
			Msg("probe_ignores_cancel")
	}
}

// failingProber stands in for a prober that could not be built, so the
// check reports why on every run instead of silently never running.
type failingProber struct {
	err error
}

func (p failingProber) Probe(context.Context) messages.ProbeResult {
	return messages.ProbeResult{Message: p.err.Error()}
}

// faultyProber suffers one injected fault instead of, or before, the
// real probe.
type faultyProber struct {
	next   Prober
	fault  messages.Fault
	flapOK bool
}

func (p faultyProber) Probe(ctx context.Context) messages.ProbeResult {
	switch p.fault {
	case messages.FaultHang:
		<-ctx.Done()
		return messages.ProbeResult{
			Message: "injected fault: hang: held past the timeout",
		}
	case messages.FaultError:
		return messages.ProbeResult{Message: "injected fault: error"}
	case messages.FaultFlap:
		msg := "injected fault: flap: failure"
		if p.flapOK {
			msg = "injected fault: flap: success"
		}
		return messages.ProbeResult{Success: p.flapOK, Message: msg}
	case messages.FaultSlow:
		if deadline, ok := ctx.Deadline(); ok {
			select {
			case <-time.After(time.Until(deadline) / 2):
			case <-ctx.Done():
			}
		}
	}
	return p.next.Probe(ctx)
}

// dryRunProber succeeds without touching the network, as Seesaw's
// -dry_run does.
type dryRunProber struct{}

func (dryRunProber) Probe(context.Context) messages.ProbeResult {
	return messages.ProbeResult{Success: true, Message: "dry run: probe not executed"}
}
