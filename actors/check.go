package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

// checkDispatcher runs a check's mailbox on its sender's goroutine; see
// newCheckProps. Whoever sends to an idle check handles all that is
// queued for it (with a runtime.Gosched every 300 messages). It holds no
// state.
var checkDispatcher = actor.NewSynchronizedDispatcher(300)

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
	clock     *probeClock
	workers   *probeWorkers
	jitter    float64
	logger    zerolog.Logger
}

// checkActor runs one healthcheck: it probes its target every interval,
// one probe at a time, and tells the notifier when the state changes.
//
// It accepts *updateCheck (a new config from the manager), *probeDone
// from its probe and, when a fault is queued for its next probe,
// *probeTick from the manager's clock. It sends *messages.CheckStatus to
// the notifier. Each probe is a plannedProbe that the check arms on the
// clock; the clock starts it when it falls due and a worker runs it, so
// Receive never blocks on the network, nor on anything else: a check's
// mailbox runs on its sender's goroutine (see newCheckProps).
//
// NOTE: "one probe at a time" holds for the probes whose results count. A
// probe dropped by a config change or a restart is cancelled, not
// waited for, so its next probe may start while it ends; its result is
// dropped. A prober that honours its context ends at once; one that does
// not is logged (probe_ignores_cancel).
type checkActor struct {
	unexpected unexpected
	rec        *checkRecord
	env        *checkEnv

	self *actor.PID
	root *actor.RootContext
	// tick is the check's place on the clock.
	tick *clockEntry

	// prober is built as the first probe starts, or nil.
	prober Prober
	// planned is when the next probe is due, on the phase of interval;
	// the probe armed for it adds its jitter.
	planned  time.Time
	interval time.Duration
	// probe is the probe armed or in flight, or nil.
	probe *plannedProbe
}

// updateCheck hands a check its new config.
type updateCheck struct {
	Config messages.Config
}

// probeTick says a probe with a fault queued is due: the check starts it
// itself, so that an injected panic happens in its Receive.
type probeTick struct {
	plan *plannedProbe
}

// probeDone carries a finished probe's result back to its check, or the
// value its prober panicked with.
type probeDone struct {
	plan     *plannedProbe
	result   messages.ProbeResult
	panicked any
}

// IgnoreDeadLetterLogging keeps ticks and results that arrive after their
// check stopped out of the dead-letter log.
func (*probeTick) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see probeTick.
func (*probeDone) IgnoreDeadLetterLogging() {}

// newCheckProps returns the props of the check of rec.
//
// NOTE: a check's mailbox runs on the goroutine of whoever sends to it
// (a probe worker, the manager, the clock) rather than on a goroutine
// started for each run, as the library's default dispatcher does. Those
// goroutines cost more than the messages at 10,000 probes a second:
// each grew its stack afresh in Receive (tests/load). It is safe because
// a check's Receive never blocks and never waits for another actor, and
// it must stay so: a check that blocked would hold its sender, the
// manager or the clock, and with it every check. It logs only its rare
// state changes, and its prober is built as the probe starts, on the
// clock (in Receive only for a probe with a fault queued).
func newCheckProps(rec *checkRecord, env *checkEnv) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &checkActor{rec: rec, env: env}
	}, actor.WithDispatcher(checkDispatcher))
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
		a.dropProbe()
	case *actor.Stopping:
		a.dropProbe()
	case *actor.Stopped, *actor.Restart:
	default:
		a.unexpected.log(a.logger(), m)
	}
}

func (a *checkActor) handleStarted(c actor.Context) {
	a.self = c.Self()
	a.root = c.ActorSystem().Root
	a.tick = &clockEntry{}
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

// event starts a line at level with the check's fields (see
// checkRecord.event).
func (a *checkActor) event(level zerolog.Level) *zerolog.Event {
	return a.rec.event(a.env.logger, level)
}

// event starts a line of log at level with the check's fields, or
// returns nil (on which zerolog's methods do nothing) when level is
// disabled, as debug is for every probe.
func (r *checkRecord) event(log zerolog.Logger, level zerolog.Level) *zerolog.Event {
	e := log.WithLevel(level)
	if e == nil {
		return nil
	}
	cfg := r.config()
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

func (a *checkActor) handleUpdate(m *updateCheck) {
	old := a.rec.config()
	if a.rec.setConfig(m.Config) {
		// A new timeout or retries need nothing more: the next probe
		// takes its timeout as it starts.
		if old.Interval != m.Config.Interval {
			a.replan(m.Config.Interval)
		}
		return
	}

	// A different probe: drop the one in flight and start afresh.
	a.event(zerolog.InfoLevel).Str("config", m.Config.String()).
		Msg("probe_changed")
	a.dropProbe()
	a.prober = nil // for the new target
	a.replan(m.Config.Interval)
}

// replan moves the next probe onto the phase of a new interval, unless a
// probe is in flight: handleDone then sees the new interval and replans.
func (a *checkActor) replan(interval time.Duration) {
	if a.probe != nil && !a.disarm() {
		return
	}
	a.interval = interval
	a.planned = firstRun(a.rec.id, interval, time.Now())
	a.arm()
}

// arm plans the next probe at a.planned plus jitter and schedules it on
// the clock.
func (a *checkActor) arm() {
	p := &plannedProbe{
		due:   a.planned.Add(jitterOffset(a.interval, a.env.jitter)),
		base:  a.prober,
		self:  a.self,
		root:  a.root,
		env:   a.env,
		rec:   a.rec,
		entry: a.tick,
	}
	p.done.plan = p
	a.probe = p
	a.env.clock.schedule(a.tick, p.due, p)
}

// disarm drops the armed probe and reports whether it did: false when
// the probe is in flight already.
func (a *checkActor) disarm() bool {
	if !a.probe.disarm() {
		return false
	}
	a.env.clock.cancel(a.tick)
	a.probe = nil
	return true
}

// handleTick starts a probe that has a fault queued, suffering an
// injected panic here, in Receive, where the manager supervises it.
func (a *checkActor) handleTick(m *probeTick) {
	if m.plan != a.probe || !m.plan.armed() {
		return
	}
	if f, _ := a.rec.takeFault(messages.FaultPanic); f != "" {
		panic("injected fault: panic")
	}
	m.plan.start()
}

func (a *checkActor) handleDone(c actor.Context, m *probeDone) {
	if a.probe == nil || m.plan != a.probe {
		return
	}
	a.probe = nil
	if a.prober == nil {
		a.prober = m.plan.base // built as the probe started
	}
	if m.panicked != nil {
		panic(m.result.Message)
	}

	st, prev, changed := a.rec.record(m.result)
	tm := a.rec.timing()
	a.env.telemetry.probeDone(tm.checker, m.result, m.result.Start.Sub(m.plan.due))
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
	if tm.interval != a.interval {
		a.interval = tm.interval
		a.planned = firstRun(a.rec.id, a.interval, now)
	} else {
		a.planned = nextRun(a.planned, a.interval, now)
	}
	a.arm()
}

// dropProbe drops the armed probe, or cancels the one in flight without
// waiting for it: its worker ends it at once, as probers honour their
// context, and drops its result. The manager's stop waits for the
// workers.
func (a *checkActor) dropProbe() {
	if a.probe == nil {
		return
	}
	a.env.clock.cancel(a.tick)
	a.probe.drop()
	a.probe = nil
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
