package actors

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/lbhealth/hcsupervisor/messages"
)

// lagBuckets returns the start-lag histogram's bucket bounds, in
// seconds.
func lagBuckets() []float64 {
	return []float64{.0001, .00025, .0005, .001, .0025, .005, .01,
		.025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// Telemetry measures one supervision tree: its actors (messages, receive
// time, mailbox depth, lifecycle, dead letters) and its domain (checks,
// probes, transitions, batches, rejected configs), into a private
// Prometheus registry. No metric has a per-check label; per-check detail
// is what /status is for. A nil *Telemetry measures nothing. It is safe
// for concurrent use.
type Telemetry struct {
	reg *prometheus.Registry

	// actors holds every live measured actor by PID Id, under actorsMu.
	// NOTE: a map and a mutex rather than a sync.Map: at an apply of
	// 100,000 checks the sync.Map's stores were a sixth of the manager's
	// time (tests/load), and a scrape is all that reads it besides.
	actorsMu sync.Mutex
	actors   map[string]*actorStat
	// kinds holds the per-kind instruments by kind name.
	kinds sync.Map

	messages    *prometheus.CounterVec
	receive     *prometheus.HistogramVec
	lifecycle   *prometheus.CounterVec
	deadLetters *prometheus.CounterVec

	probes          *prometheus.CounterVec
	probeDuration   *prometheus.HistogramVec
	startLagHist    prometheus.Histogram
	transitions     *prometheus.CounterVec
	batchSize       prometheus.Histogram
	configsRejected *prometheus.CounterVec

	// states counts checks by state; configured counts them by checker.
	states     [3]atomic.Int64
	configured sync.Map
	// checkers holds each checker's *checkerStat.
	checkers sync.Map
	// lastUpdate is when the manager last received update_configs, in
	// Unix nanoseconds; 0 before the first.
	lastUpdate atomic.Int64
}

// NewTelemetry returns a Telemetry with its own registry.
func NewTelemetry() *Telemetry {
	t := newTelemetry()
	t.reg.MustRegister(t.probes, t.probeDuration, t.startLagHist,
		t.transitions, t.batchSize, t.configsRejected, &gauges{t})
	return t
}

// NewActorTelemetry returns a Telemetry whose registry holds the actor
// metrics only, for a process that runs actors but no checks, such as
// the split deployment's bridge.
func NewActorTelemetry() *Telemetry {
	return newTelemetry()
}

// newTelemetry builds every instrument and registers the actor metrics.
func newTelemetry() *Telemetry {
	t := &Telemetry{reg: prometheus.NewRegistry(),
		actors: make(map[string]*actorStat)}
	t.messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hc_actor_messages_total",
		Help: "Messages received by actors, by kind of actor and message type.",
	}, []string{"kind", "message"})
	t.receive = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hc_actor_receive_duration_seconds",
		Help:    "Time an actor spends handling one message, by kind of actor.",
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
	}, []string{"kind"})
	t.lifecycle = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hc_actor_lifecycle_total",
		Help: "Actor spawns, stops, restarts and failures, by kind of actor.",
	}, []string{"kind", "event"})
	t.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hc_actor_dead_letters_total",
		Help: "Messages sent to actors that no longer exist, by the kind of " +
			"actor they were for and message type.",
	}, []string{"kind", "message"})
	t.probes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hc_probes_total",
		Help: "Probes run, by checker and result.",
	}, []string{"checker", "result"})
	t.probeDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hc_probe_duration_seconds",
		Help:    "How long probes take, by checker.",
		Buckets: prometheus.ExponentialBuckets(1e-4, 4, 10),
	}, []string{"checker"})
	t.startLagHist = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "hc_probe_start_lag_seconds",
		Help: "How late probes start against their plan.",
		// 1, 2.5 and 5 in each decade from 100µs to 10s, so that a p99
		// can be told against a bound such as 25ms.
		Buckets: lagBuckets(),
	})
	t.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hc_state_transitions_total",
		Help: "Check state changes, by old and new state.",
	}, []string{"from", "to"})
	t.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hc_notification_batch_size",
		Help:    "Notifications per batch sent by the notifier.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	})
	t.configsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hc_configs_rejected_total",
		Help: "Configs rejected, by the field or reason at fault.",
	}, []string{"reason"})
	t.reg.MustRegister(t.messages, t.receive, t.lifecycle, t.deadLetters)
	return t
}

// Registry returns the registry the Telemetry's metrics are in; callers
// may register more collectors into it.
func (t *Telemetry) Registry() *prometheus.Registry { return t.reg }

// actorStat is one measured actor.
type actorStat struct {
	kind   string
	id     string
	parent string
	// mailbox is the actor's mailbox, set as it is made, before the
	// actor starts and so before readers find st in Telemetry.actors.
	mailbox    actor.Mailbox
	restarts   atomic.Uint64
	registered bool
}

// depth returns how many user messages wait in the actor's mailbox.
func (s *actorStat) depth() int64 {
	if s.mailbox == nil {
		return 0
	}
	return int64(s.mailbox.UserMessageCount())
}

// kindStat holds the instruments of one kind of actor.
type kindStat struct {
	kind    string
	receive prometheus.Observer
	spawns  prometheus.Counter
	stops   prometheus.Counter
	crashes prometheus.Counter
	restart prometheus.Counter
	// byType caches the message counter of each message type.
	byType sync.Map
}

func (t *Telemetry) kind(name string) *kindStat {
	if k, ok := t.kinds.Load(name); ok {
		return k.(*kindStat)
	}
	k := &kindStat{
		kind:    name,
		receive: t.receive.WithLabelValues(name),
		spawns:  t.lifecycle.WithLabelValues(name, "spawn"),
		stops:   t.lifecycle.WithLabelValues(name, "stop"),
		crashes: t.lifecycle.WithLabelValues(name, "failure"),
		restart: t.lifecycle.WithLabelValues(name, "restart"),
	}
	actual, _ := t.kinds.LoadOrStore(name, k)
	return actual.(*kindStat)
}

func (t *Telemetry) counter(k *kindStat, msg any) prometheus.Counter {
	typ := reflect.TypeOf(msg)
	if c, ok := k.byType.Load(typ); ok {
		return c.(prometheus.Counter)
	}
	c := t.messages.WithLabelValues(k.kind, typeName(msg))
	k.byType.Store(typ, c)
	return c
}

// typeName names a message's type without pointer or module path, e.g.
// "messages.UpdateConfigs".
func typeName(msg any) string {
	return strings.TrimLeft(fmt.Sprintf("%T", msg), "*")
}

// Wrap adds measurement to props of one actor of the given kind: its
// mailbox, whose depth it reads, and a receiver middleware. Each spawn
// needs props of its own. Wrap on a nil Telemetry returns props as they
// are.
//
// NOTE: the mailbox is the library's default, a ring under a mutex. Its
// lock-free one holds 230 bytes less a check while idle (BenchmarkApply
// allocated 333 against 356 MB a run with it), but when two
// senders race, the mailbox's count can show a message whose link the
// first sender, preempted, has not written yet; the consumer then spins
// on the empty queue until that sender runs again. A check's mailbox is
// run by its senders (the probe workers, the manager), so that spin
// would stall a worker on a busy machine. tests/load could not tell the
// two mailboxes apart through the host's noise.
func (t *Telemetry) Wrap(kind string, props *actor.Props) *actor.Props {
	if t == nil {
		return props
	}
	st := &actorStat{kind: kind}
	k := t.kind(kind)
	unbounded := actor.Unbounded()
	return props.Configure(
		// NOTE: the depth is read from the mailbox when asked for, rather
		// than counted by a mailbox middleware: that cost two atomic adds
		// on the actor's own cache line per message, which at 100,000
		// checks is mostly a cache miss each (tests/load).
		actor.WithMailbox(func() actor.Mailbox {
			st.mailbox = unbounded()
			return st.mailbox
		}),
		actor.WithReceiverMiddleware(t.middleware(st, k)),
	)
}

func (t *Telemetry) middleware(st *actorStat, k *kindStat) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			t.lifecycleEvent(st, k, c, env.Message)
			start := time.Now()
			defer func() {
				// A message whose handling panics counts too, as a
				// failure besides.
				k.receive.Observe(time.Since(start).Seconds())
				t.counter(k, env.Message).Inc()
				if r := recover(); r != nil {
					k.crashes.Inc()
					panic(r)
				}
			}()
			next(c, env)
		}
	}
}

// lifecycleEvent registers, counts and forgets actors as they start,
// restart and stop.
func (t *Telemetry) lifecycleEvent(st *actorStat, k *kindStat,
	c actor.ReceiverContext, msg any) {
	switch msg.(type) {
	case *actor.Started:
		if st.registered {
			return
		}
		st.registered = true
		st.id = c.Self().Id
		if p := c.Parent(); p != nil {
			st.parent = p.Id
		}
		t.actorsMu.Lock()
		t.actors[st.id] = st
		t.actorsMu.Unlock()
		k.spawns.Inc()
	case *actor.Restarting:
		st.restarts.Add(1)
		k.restart.Inc()
	case *actor.Stopped:
		t.actorsMu.Lock()
		delete(t.actors, st.id)
		t.actorsMu.Unlock()
		k.stops.Inc()
	}
}

// configsReceived notes that the manager received update_configs.
func (t *Telemetry) configsReceived() {
	if t != nil {
		t.lastUpdate.Store(time.Now().UnixNano())
	}
}

// WatchDeadLetters counts the dead letters of sys until the returned
// function is called.
func (t *Telemetry) WatchDeadLetters(sys *actor.ActorSystem) (stop func()) {
	if t == nil {
		return func() {}
	}
	type key struct {
		kind string
		typ  reflect.Type
	}
	var counters sync.Map
	sub := sys.EventStream.Subscribe(func(evt any) {
		dl, ok := evt.(*actor.DeadLetterEvent)
		if !ok {
			return
		}
		k := key{deadLetterKind(dl.PID), reflect.TypeOf(dl.Message)}
		c, ok := counters.Load(k)
		if !ok {
			c, _ = counters.LoadOrStore(k,
				t.deadLetters.WithLabelValues(k.kind, typeName(dl.Message)))
		}
		c.(prometheus.Counter).Inc()
	})
	return func() { sys.EventStream.Unsubscribe(sub) }
}

// deadLetterKind names the kind of actor a dead letter was for. The actor
// is gone, so its name tells: a check is named by its ID, the tree's
// other actors by their kind (the root is "hc"); any other actor, such as
// an embedding daemon's or an answer's future, is "other".
func deadLetterKind(pid *actor.PID) string {
	if pid == nil {
		return "other"
	}
	if _, ok := parseChildID(pid.Id); ok {
		return "check"
	}
	switch name := pid.Id[strings.LastIndexByte(pid.Id, '/')+1:]; name {
	case rootName:
		return "root"
	case "manager", notifierName, "proxy", "bridge", "link":
		return name
	}
	return "other"
}

// Tree returns every live measured actor, parents before children.
func (t *Telemetry) Tree() *messages.TreeReport {
	rep := &messages.TreeReport{}
	if t == nil {
		return rep
	}
	t.actorsMu.Lock()
	rep.Actors = make([]messages.ActorReport, 0, len(t.actors))
	for _, st := range t.actors {
		rep.Actors = append(rep.Actors, messages.ActorReport{
			ID:       st.id,
			Parent:   st.parent,
			Kind:     st.kind,
			Mailbox:  st.depth(),
			Restarts: st.restarts.Load(),
		})
	}
	t.actorsMu.Unlock()
	slices.SortFunc(rep.Actors, func(a, b messages.ActorReport) int {
		return strings.Compare(a.ID, b.ID)
	})
	return rep
}

// probeDone records one probe's outcome and how late it started.
func (t *Telemetry) probeDone(checker messages.CheckerType,
	res messages.ProbeResult, lag time.Duration) {
	if t == nil {
		return
	}
	c := t.checkerStat(checker)
	if res.Success {
		c.successes.Inc()
	} else {
		c.failures.Inc()
	}
	c.duration.Observe(res.Duration.Seconds())
	t.startLagHist.Observe(max(lag, 0).Seconds())
}

// checkerStat holds the probe instruments of one checker, so that a
// probe's outcome is counted without a label lookup.
type checkerStat struct {
	successes, failures prometheus.Counter
	duration            prometheus.Observer
}

func (t *Telemetry) checkerStat(checker messages.CheckerType) *checkerStat {
	if c, ok := t.checkers.Load(checker); ok {
		return c.(*checkerStat)
	}
	name := string(checker)
	c, _ := t.checkers.LoadOrStore(checker, &checkerStat{
		successes: t.probes.WithLabelValues(name, "success"),
		failures:  t.probes.WithLabelValues(name, "failure"),
		duration:  t.probeDuration.WithLabelValues(name),
	})
	return c.(*checkerStat)
}

// transition records a check's change of state.
func (t *Telemetry) transition(from, to messages.State) {
	if t == nil || from == to {
		return
	}
	t.transitions.WithLabelValues(from.String(), to.String()).Inc()
	t.states[from].Add(-1)
	t.states[to].Add(1)
}

// checkAdded and checkRemoved keep the counts by state and checker.
func (t *Telemetry) checkAdded(checker messages.CheckerType) {
	if t == nil {
		return
	}
	t.states[messages.StateUnknown].Add(1)
	t.configuredCount(checker).Add(1)
}

// restored moves a new check from unknown to its restored state without
// counting a transition.
func (t *Telemetry) restored(st messages.State) {
	if t == nil {
		return
	}
	t.states[messages.StateUnknown].Add(-1)
	t.states[st].Add(1)
}

func (t *Telemetry) checkRemoved(checker messages.CheckerType, st messages.State) {
	if t == nil {
		return
	}
	t.states[st].Add(-1)
	t.configuredCount(checker).Add(-1)
}

func (t *Telemetry) checkerChanged(from, to messages.CheckerType) {
	if t == nil || from == to {
		return
	}
	t.configuredCount(from).Add(-1)
	t.configuredCount(to).Add(1)
}

func (t *Telemetry) configuredCount(checker messages.CheckerType) *atomic.Int64 {
	c, ok := t.configured.Load(checker)
	if !ok {
		c, _ = t.configured.LoadOrStore(checker, &atomic.Int64{})
	}
	return c.(*atomic.Int64)
}

// startLag summarises the start-lag histogram, or returns nil before the
// first probe.
func (t *Telemetry) startLag() *messages.LagReport {
	var m dto.Metric
	if t == nil || t.startLagHist.Write(&m) != nil || m.Histogram.GetSampleCount() == 0 {
		return nil
	}
	h := m.Histogram
	return &messages.LagReport{
		Probes:     h.GetSampleCount(),
		P50Seconds: quantile(h, 0.5),
		P99Seconds: quantile(h, 0.99),
	}
}

// quantile estimates the q-quantile of a histogram, interpolating
// linearly inside the bucket that holds it, as Prometheus's
// histogram_quantile does.
func quantile(h *dto.Histogram, q float64) float64 {
	rank := q * float64(h.GetSampleCount())
	var lower, below float64
	for _, b := range h.GetBucket() {
		upper, count := b.GetUpperBound(), float64(b.GetCumulativeCount())
		if count >= rank {
			if count == below {
				return upper
			}
			return lower + (upper-lower)*(rank-below)/(count-below)
		}
		lower, below = upper, count
	}
	return lower // Beyond the last bucket: its bound is all we know.
}

// checks returns how many checks are configured.
func (t *Telemetry) checks() int {
	var n int64
	for i := range t.states {
		n += t.states[i].Load()
	}
	return int(n)
}

// batchSent records the size of a notification batch.
func (t *Telemetry) batchSent(n int) {
	if t != nil {
		t.batchSize.Observe(float64(n))
	}
}

// configRejected counts a rejected config by the field or reason its
// error starts with, so that the label's values stay few.
func (t *Telemetry) configRejected(err error) {
	if t == nil {
		return
	}
	msg := strings.TrimPrefix(err.Error(), messages.ErrInvalidConfig.Error()+": ")
	reason, _, _ := strings.Cut(msg, ":")
	if strings.HasPrefix(reason, "unknown field") {
		reason = "unknown field"
	}
	if strings.ContainsAny(reason, " \"") && reason != "unknown field" &&
		reason != "not supported yet" {
		reason = "malformed"
	}
	t.configsRejected.WithLabelValues(reason).Inc()
}

// configsOverLimit counts configs rejected for exceeding the check limit.
func (t *Telemetry) configsOverLimit(n int) {
	if t != nil && n > 0 {
		t.configsRejected.WithLabelValues("max_checks").Add(float64(n))
	}
}

// gauges exports the counts kept by state and checker.
type gauges struct{ t *Telemetry }

var (
	checksDesc = prometheus.NewDesc("hc_checks",
		"Configured checks by state.", []string{"state"}, nil)
	configuredDesc = prometheus.NewDesc("hc_checks_configured",
		"Configured checks by checker.", []string{"checker"}, nil)
	mailboxDesc = prometheus.NewDesc("hc_actor_mailbox_depth",
		"Messages waiting in mailboxes, summed by kind of actor.",
		[]string{"kind"}, nil)
	actorsDesc = prometheus.NewDesc("hc_actors",
		"Live actors, by kind.", []string{"kind"}, nil)
)

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- checksDesc
	ch <- configuredDesc
	ch <- mailboxDesc
	ch <- actorsDesc
}

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	for st := range g.t.states {
		ch <- prometheus.MustNewConstMetric(checksDesc, prometheus.GaugeValue,
			float64(g.t.states[st].Load()), messages.State(st).String())
	}
	g.t.configured.Range(func(k, v any) bool {
		ch <- prometheus.MustNewConstMetric(configuredDesc, prometheus.GaugeValue,
			float64(v.(*atomic.Int64).Load()), string(k.(messages.CheckerType)))
		return true
	})
	depth := make(map[string]int64)
	count := make(map[string]int64)
	g.t.actorsMu.Lock()
	for _, st := range g.t.actors {
		depth[st.kind] += st.depth()
		count[st.kind]++
	}
	g.t.actorsMu.Unlock()
	for kind, d := range depth {
		ch <- prometheus.MustNewConstMetric(mailboxDesc, prometheus.GaugeValue,
			float64(d), kind)
		ch <- prometheus.MustNewConstMetric(actorsDesc, prometheus.GaugeValue,
			float64(count[kind]), kind)
	}
}
