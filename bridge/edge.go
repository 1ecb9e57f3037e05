package bridge

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

// Defaults of EdgeConfig, as Seesaw's flags.
const (
	DefaultFetchInterval = 15 * time.Second
	DefaultRetryDelay    = 2 * time.Second
	DefaultMaxFailures   = 10
	DefaultMaxBackoff    = time.Minute
)

// maxPerCall bounds the notifications of one HealthState call, so that a
// backlog of a large fleet goes in calls that fit the RPC deadline.
const maxPerCall = 5000

// maxRefreshPerCall bounds the refreshes (statuses that change nothing) of
// one call, so that a backlog of them goes in many short calls rather
// than one long one; a change never waits for them (see send).
const maxRefreshPerCall = 500

// statusTimeout bounds the request for every check's status that follows
// the Engine's recovery.
const statusTimeout = 30 * time.Second

// EdgeConfig configures the Engine bridge.
type EdgeConfig struct {
	// Engine is the Engine's client.
	Engine *EngineClient
	// FetchInterval is the time between config fetches. Default 15s.
	FetchInterval time.Duration
	// RetryDelay is the wait before retrying a failed fetch or HealthState
	// call. Default 2s.
	RetryDelay time.Duration
	// MaxFailures is how many failed rounds of HealthState calls in a row
	// (the calls failing in one round count once) make the bridge alarm:
	// it logs an error, backs off exponentially up to
	// MaxBackoff (default 1m), and once the Engine answers again it sends
	// every check's status. Default 10.
	MaxFailures int
	MaxBackoff  time.Duration
	// OnMaxFailures, if set, is called once when MaxFailures is reached,
	// for operators whose watchdog expects Seesaw's exit. It must not
	// block.
	OnMaxFailures func(error)
	// Stats, if set, is updated as the bridge works.
	Stats *EdgeStats
	// Logger receives the bridge's log lines.
	Logger zerolog.Logger
}

// EdgeStats counts what the bridge did. Its fields are safe to read
// concurrently.
type EdgeStats struct {
	Fetches, FetchErrors         atomic.Uint64
	HealthStates, HealthStateErr atomic.Uint64
	// Pending is the number of statuses the Engine has not confirmed:
	// queued, or in a call in flight.
	Pending atomic.Int64
	// LastFetch is the Unix time in nanoseconds of the last good fetch.
	LastFetch atomic.Int64
	// LastApplied is the Unix time in nanoseconds when the manager last
	// confirmed that it had applied a config set the bridge sent it;
	// zero until the first confirmation. It follows LastFetch, later by
	// the manager's delay, and stops while the manager does not answer.
	// In the split deployment the link stands in for the manager and
	// confirms nothing, so it stays zero there.
	LastApplied atomic.Int64
	// Unreachable is true while MaxFailures or more calls in a row failed.
	Unreachable atomic.Bool
}

func (cfg *EdgeConfig) applyDefaults() {
	if cfg.FetchInterval <= 0 {
		cfg.FetchInterval = DefaultFetchInterval
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.MaxBackoff < cfg.RetryDelay {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.RetryDelay)
	}
	if cfg.Stats == nil {
		cfg.Stats = &EdgeStats{}
	}
	if cfg.Engine == nil {
		cfg.Engine = NewEngineClient("", 0)
	}
}

// NewEdge returns the props of the Engine bridge, given the PID of the
// manager it feeds: the supervision tree's manager in-process, or the
// link to the server's socket in the split deployment.
//
// The bridge fetches configs from the Engine every FetchInterval and sends
// them to the manager as *messages.UpdateConfigs requests; the manager's
// *messages.ConfigsApplied answer sets EdgeStats.LastApplied. It accepts
// *messages.NotificationBatch and tells the Engine with HealthState
// calls, one at a time, or two while the first carries refreshes (see
// send); statuses that wait coalesce to the newest per check, so a long
// Engine outage loses nothing but superseded states. It
// asks the manager for *messages.RequestStatus after the Engine recovers.
func NewEdge(cfg EdgeConfig) func(manager *actor.PID) *actor.Props {
	cfg.applyDefaults()
	return func(manager *actor.PID) *actor.Props {
		e := &edge{
			cfg:     cfg,
			manager: manager,
			log:     cfg.Logger.With().Str("actor", "bridge").Logger(),
			pending: newStatusQueue(),
		}
		// NOTE: every incarnation is the same value, so a restart keeps
		// the pending statuses; Restarting stops the timers and calls.
		return actor.PropsFromProducer(func() actor.Actor { return e })
	}
}

// edge is the Engine bridge actor; see NewEdge.
type edge struct {
	unexpected unexpected
	cfg        EdgeConfig
	manager    *actor.PID
	log        zerolog.Logger
	self       *actor.PID
	root       *actor.RootContext

	fetchTimer *timer
	fetching   *call

	pending *statusQueue
	// guard filters the status asked for after an outage.
	guard snapshotGuard
	// main and rush are the HealthState calls in flight, or nil; see
	// send.
	main, rush *healthCall
	sendTimer  *timer
	// failures counts failed rounds of HealthState calls in a row.
	failures int
	// skipped holds the IDs of the last fetch's checks that cannot run.
	skipped map[uint64]bool
}

// call is an RPC in flight in a goroutine the bridge owns.
type call struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// timer sends the bridge a message after a delay.
type timer struct{ t *time.Timer }

// stop stops tm, if any. Its message may be on its way already.
func (tm *timer) stop() {
	if tm != nil {
		tm.t.Stop()
	}
}

// fetchDue, fetched, sendDue and sent are the bridge's own messages. Each
// names the timer or the call it comes from: a message whose timer or
// call is no longer the bridge's current one is stale and dropped, such
// as the outcome of a call that a restart cancelled, which arrives after
// the restarted bridge began its next call.
type (
	fetchDue struct{ timer *timer }
	fetched  struct {
		call   *call
		checks *Checks
		err    error
	}
	sendDue struct{ timer *timer }
	sent    struct {
		call *call
		err  error
	}
)

// Receive handles one message.
func (e *edge) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *messages.NotificationBatch:
		e.guard.passed(m.Notifications)
		if m.Periodic {
			e.pending.addRefresh(m.Notifications)
		} else {
			e.pending.add(m.Notifications)
		}
		e.send()
	case *messages.InjectFault:
		e.sufferFault(c, m)
	case *messages.Crash:
		panic(m.Reason)
	case *fetchDue:
		e.handleFetchDue(m)
	case *fetched:
		e.handleFetched(c, m)
	case *sendDue:
		e.handleSendDue(m)
	case *sent:
		e.handleSent(c, m)
	case *messages.ConfigsApplied:
		e.handleApplied(m)
	case *actor.DeadLetterResponse:
		e.log.Warn().Msg("configs_not_applied_manager_gone")
	case *actor.Started:
		// After a restart, the statuses of the halted call wait in
		// pending: send them at once.
		e.self, e.root = c.Self(), c.ActorSystem().Root
		e.fetch()
		e.send()
	case *actor.Stopping:
		e.halt()
		e.flushOnStop()
	case *actor.Restarting:
		e.halt()
	case *actor.Stopped:
	default:
		e.unexpected.log(e.log, m)
	}
}

// sufferFault takes an injected panic aimed at the bridge.
func (e *edge) sufferFault(c actor.Context, f *messages.InjectFault) {
	queued := f.SingletonCrashes()
	c.Respond(f.Ack(queued))
	for range queued {
		c.Send(c.Self(), &messages.Crash{Reason: "injected fault: panic"})
	}
}

// after returns a timer that sends the bridge due(timer) after d.
func (e *edge) after(d time.Duration, due func(*timer) any) *timer {
	tm := &timer{}
	self, root := e.self, e.root
	tm.t = time.AfterFunc(d, func() { root.Send(self, due(tm)) })
	return tm
}

// armFetch sets the fetch timer as a fetch ends. The next fetch starts
// when it fires, so a fetch or the timer is pending, never both.
func (e *edge) armFetch(d time.Duration) {
	e.fetchTimer = e.after(d, func(tm *timer) any {
		return &fetchDue{timer: tm}
	})
}

// armSend sets the retry timer as a HealthState call fails. send starts
// no call while it is set; the other call, if one is in flight, may end
// meanwhile (see handleSent).
func (e *edge) armSend(d time.Duration) {
	e.sendTimer = e.after(d, func(tm *timer) any {
		return &sendDue{timer: tm}
	})
}

// run makes an RPC in a goroutine and reports its outcome as the message
// rpc returns, which names the call rpc is given.
func (e *edge) run(rpc func(ctx context.Context, cl *call) any) *call {
	ctx, cancel := context.WithCancel(context.Background())
	cl := &call{cancel: cancel, done: make(chan struct{})}
	self, root := e.self, e.root
	go func() {
		defer close(cl.done)
		defer cancel()
		root.Send(self, rpc(ctx, cl))
	}()
	return cl
}

func (e *edge) handleFetchDue(m *fetchDue) {
	if m.timer != e.fetchTimer {
		e.log.Debug().Msg("stale_fetch_timer_dropped")
		return
	}
	e.fetchTimer = nil
	e.fetch()
}

// fetch starts a Healthchecks call, unless one is in flight.
func (e *edge) fetch() {
	if e.fetching != nil {
		return
	}
	engine := e.cfg.Engine
	e.fetching = e.run(func(ctx context.Context, cl *call) any {
		checks, err := engine.Healthchecks(ctx)
		return &fetched{call: cl, checks: checks, err: err}
	})
}

func (e *edge) handleFetched(c actor.Context, m *fetched) {
	if m.call != e.fetching {
		e.log.Debug().Err(m.err).Msg("stale_fetch_dropped")
		return
	}
	e.fetching = nil
	if m.err != nil {
		e.cfg.Stats.FetchErrors.Add(1)
		e.log.Warn().Err(m.err).Dur("retry_in", e.cfg.RetryDelay).Msg("fetch_failed")
		e.armFetch(e.cfg.RetryDelay)
		return
	}
	e.cfg.Stats.Fetches.Add(1)
	e.cfg.Stats.LastFetch.Store(time.Now().UnixNano())

	configs, rejected := ToConfigs(m.checks)
	update := &messages.UpdateConfigs{Configs: configs}
	for _, id := range slices.Sorted(maps.Keys(rejected)) {
		// Logged once per check, not on every fetch.
		if !e.skipped[id] {
			e.log.Warn().Uint64("id", id).Err(rejected[id]).Msg("engine_check_skipped")
		}
		update.Rejected = append(update.Rejected,
			&messages.ConfigError{ID: id, HasID: true, Err: rejected[id]})
	}
	e.skipped = make(map[uint64]bool, len(rejected))
	for id := range rejected {
		e.skipped[id] = true
	}
	// The Engine answers again: a HealthState waiting out its backoff
	// need not wait any longer.
	if e.failures >= e.cfg.MaxFailures && e.sendTimer != nil {
		e.sendTimer.stop()
		e.sendTimer = nil
		e.send()
	}
	e.log.Debug().Int("configs", len(configs)).Int("skipped", len(rejected)).
		Msg("configs_fetched")
	c.Request(e.manager, update)
	e.armFetch(e.cfg.FetchInterval)
}

// handleApplied records that the manager applied a config set. The
// configs the manager rejected itself it has logged, with their IDs, at
// error; the bridge notes them at debug only.
func (e *edge) handleApplied(m *messages.ConfigsApplied) {
	e.cfg.Stats.LastApplied.Store(time.Now().UnixNano())
	if len(m.Rejected) > 0 {
		e.log.Debug().Int("rejected", len(m.Rejected)).
			Str("first", m.Rejected[0].Error()).Msg("configs_rejected_by_manager")
	}
}

// resendAll asks the manager for every check's status and queues it, so
// the Engine ends with the truth after an outage however it began.
func (e *edge) resendAll(c actor.Context) {
	e.guard.asked()
	f := c.RequestFuture(e.manager, &messages.RequestStatus{}, statusTimeout)
	c.ReenterAfter(f, func(res any, err error) {
		sr, ok := res.(*messages.StatusResponse)
		if err != nil || !ok {
			e.guard.answered(nil)
			e.log.Error().Err(err).Msg("status_after_recovery_failed")
			return
		}
		known := e.guard.answered(sr.Statuses)
		e.pending.addOlder(known)
		e.send()
	})
}

// halt stops the timers and cancels the calls in flight, waiting for
// their goroutines. The messages they sent meanwhile are stale.
func (e *edge) halt() {
	e.fetchTimer.stop()
	e.sendTimer.stop()
	e.fetchTimer, e.sendTimer = nil, nil
	if e.fetching != nil {
		e.fetching.cancel()
		<-e.fetching.done
		e.fetching = nil
	}
	// putBack puts a batch ahead of what is queued: the rush's, newer,
	// goes back first, so that the main call's ends up ahead of it.
	for _, hc := range []*healthCall{e.rush, e.main} {
		if hc != nil {
			hc.cancel()
			<-hc.done
			e.pending.putBack(hc.batch, hc.refreshes)
		}
	}
	e.main, e.rush = nil, nil
}

// flushOnStop makes one last bounded attempt to tell the Engine what is
// pending, so a clean stop loses nothing the Engine could take.
func (e *edge) flushOnStop() {
	if e.pending.len() == 0 {
		return
	}
	batch, _ := e.pending.take(e.pending.len(), e.pending.len(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.RetryDelay)
	defer cancel()
	if err := e.cfg.Engine.HealthState(ctx, batch); err != nil {
		e.log.Error().Err(err).Int("lost", len(batch)).Msg("final_flush_failed")
		return
	}
	e.log.Info().Int("notifications", len(batch)).Msg("final_flush_done")
}
