package actors

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors/probe"
	"github.com/lbhealth/hcsupervisor/messages"
)

// DefaultMaxChecks is the default of ManagerConfig.MaxChecks.
const DefaultMaxChecks = 250_000

// maxLoggedIDs bounds the IDs one log line lists.
const maxLoggedIDs = 20

// DefaultNotifyInterval is how often the manager re-sends every check's
// status, as Seesaw's -notify_interval.
const DefaultNotifyInterval = 15 * time.Second

// notifierName is the notifier's name among the manager's children; check
// children are named by their decimal ID, so the two never clash.
const notifierName = "notifier"

// ManagerConfig configures a manager and the checks and notifier under it.
type ManagerConfig struct {
	// Sink receives every *messages.NotificationBatch.
	Sink *actor.PID
	// NotifyInterval is how often every check's status is re-sent in full.
	// Default 15s.
	NotifyInterval time.Duration
	// BatchSize and BatchDelay configure the notifier; see NotifierConfig.
	BatchSize  int
	BatchDelay time.Duration
	// DryRun makes every probe succeed without touching the network.
	DryRun bool
	// ProbeRate, if positive, bounds probe starts across all checks, per
	// second; a start beyond it waits for its slot. Default 0: no bound.
	ProbeRate float64
	// Jitter, from 0 to 1, delays each planned start by a random part of
	// up to Jitter × interval. Default 0: starts on the check's phase.
	Jitter float64
	// MaxChecks bounds the checks the manager runs. An update naming more
	// keeps the checks already running, then the new ones in the update's
	// order, up to the bound; the rest are rejected one by one (each with
	// ErrTooManyChecks, answered to an update's sender), counted and
	// logged. Default 250,000.
	MaxChecks int
	// NewProber builds a check's prober. Default: ProbeOptions.New; tests
	// and fault injection substitute their own. It is called as a probe
	// starts, on the goroutine that starts every check's probes, with the
	// check's record locked: it must not block, must not keep the config
	// it is lent, and may run beside the check's own handling.
	NewProber func(*messages.Config) (Prober, error)
	// ProbeOptions are the real probers' options, used when NewProber is
	// nil: e.g. ResetClose, which keeps TCP probes out of TIME_WAIT.
	ProbeOptions probe.Options
	// RestartBackoffMin and RestartBackoffMax bound the wait before a
	// crashed check restarts; it doubles with each crash in a row.
	// Defaults 100ms and 30s.
	RestartBackoffMin time.Duration
	RestartBackoffMax time.Duration
	// NotifierStats and FaultStats, if set, are updated as the tree works.
	NotifierStats *NotifierStats
	FaultStats    *FaultStats
	// Telemetry, if set, measures the manager, its children and the
	// checks' domain.
	Telemetry *Telemetry
	// StateFile, if set, keeps every check's last known state across
	// restarts: written every StateSaveInterval (default 30s) and when
	// the manager drains, read when it starts. A check whose config is
	// unchanged starts in its saved state, kept out of the periodic full
	// status as RestorePolicy says (RestoreConfirm, the default, or
	// RestoreInterval). A corrupt or foreign file is logged and ignored.
	StateFile         string
	StateSaveInterval time.Duration
	RestorePolicy     string
	// Logger receives the tree's log lines.
	Logger zerolog.Logger
}

// DefaultManagerConfig returns the defaults: Seesaw's intervals and batch
// sizes, real probes (NewProber nil), no sink.
func DefaultManagerConfig() ManagerConfig {
	return ManagerConfig{
		NotifyInterval:    DefaultNotifyInterval,
		MaxChecks:         DefaultMaxChecks,
		BatchSize:         DefaultBatchSize,
		BatchDelay:        DefaultBatchDelay,
		RestartBackoffMin: DefaultRestartBackoffMin,
		RestartBackoffMax: DefaultRestartBackoffMax,
		Logger:            zerolog.Nop(),
	}
}

// manager owns one check actor per configured ID and the notifier.
//
// It accepts *messages.UpdateConfigs (the complete desired set), which it
// answers with *messages.ConfigsApplied when it has a sender, and
// *messages.RequestStatus, which it answers with *messages.StatusResponse.
// It sends *updateCheck to checks and, every NotifyInterval, every known
// status to the notifier in *messages.NotificationBatch slices spread
// over the interval.
//
// Its state lives in a managerState that survives a restart of the
// manager, so a restarted manager starts its checks again as they were.
type manager struct {
	*managerState
	notifyTimer *time.Timer
	// round is the periodic full status under way.
	round periodicRound
}

// managerState is the manager's desired and actual state.
type managerState struct {
	unexpected unexpected
	cfg        ManagerConfig
	log        zerolog.Logger
	env        *checkEnv

	// records holds every desired check by ID. The manager alone writes
	// the map; readers outside the actor take mu.
	mu      sync.RWMutex
	records map[uint64]*checkRecord
	// sorted holds the records by ascending ID, or nil until asked for
	// after the set changed; updates numbers the updates, so that an
	// update can mark the records it names (checkRecord.named).
	sorted  []*checkRecord
	updates uint64

	// pids holds the live child of each ID; stopping holds children asked
	// to stop whose Terminated has not arrived, by PID Id.
	pids     map[uint64]*actor.PID
	stopping map[string]uint64

	// root sends on behalf of the manager outside Receive.
	root *actor.RootContext

	// backoffs holds the restarts of crashed children not yet due.
	backoffs backoffs

	// restorable holds the states read from the state file, until their
	// checks are configured; saveTimer and saving drive the file's writes.
	restorable map[uint64]savedCheck
	saveTimer  *time.Timer
	saving     chan struct{}

	// draining is set once a Shutdown has arrived; halting while the
	// manager stops or restarts, when the library stops the children.
	draining bool
	halting  bool
}

// notifyTick says the periodic full status is due.
type notifyTick struct{}

// IgnoreDeadLetterLogging keeps timer messages that outlive the manager
// out of the dead-letter log.
func (*notifyTick) IgnoreDeadLetterLogging() {}

// NewManager returns the props of a manager; zero fields of cfg take their
// defaults.
func NewManager(cfg ManagerConfig) *actor.Props {
	def := DefaultManagerConfig()
	if cfg.NotifyInterval <= 0 {
		cfg.NotifyInterval = def.NotifyInterval
	}
	if cfg.NewProber == nil {
		opts := cfg.ProbeOptions
		cfg.NewProber = func(c *messages.Config) (Prober, error) {
			return opts.New(c)
		}
	}
	if cfg.MaxChecks <= 0 {
		cfg.MaxChecks = def.MaxChecks
	}
	if cfg.StateSaveInterval <= 0 {
		cfg.StateSaveInterval = DefaultStateSaveInterval
	}
	if cfg.RestorePolicy == "" {
		cfg.RestorePolicy = RestoreConfirm
	}
	if cfg.RestartBackoffMin <= 0 {
		cfg.RestartBackoffMin = def.RestartBackoffMin
	}
	if cfg.RestartBackoffMax < cfg.RestartBackoffMin {
		cfg.RestartBackoffMax = max(def.RestartBackoffMax, cfg.RestartBackoffMin)
	}
	if cfg.FaultStats == nil {
		cfg.FaultStats = &FaultStats{}
	}
	if cfg.DryRun {
		cfg.NewProber = func(*messages.Config) (Prober, error) {
			return dryRunProber{}, nil
		}
	}
	st := &managerState{
		cfg:      cfg,
		log:      cfg.Logger.With().Str("actor", "manager").Logger(),
		records:  make(map[uint64]*checkRecord),
		pids:     make(map[uint64]*actor.PID),
		stopping: make(map[string]uint64),
	}
	st.loadState()
	// NOTE: manager implements actor.SupervisorStrategy, so it supervises
	// its children itself; see HandleFailure.
	return actor.PropsFromProducer(func() actor.Actor {
		return &manager{managerState: st}
	})
}

// Receive handles one message.
func (m *manager) Receive(c actor.Context) {
	switch msg := c.Message().(type) {
	case *messages.UpdateConfigs:
		m.handleUpdate(c, msg)
	case *messages.RequestStatus:
		c.Respond(m.statusResponse())
	case *messages.RequestReport:
		c.Respond(m.report())
	case *notifyTick:
		m.handleNotifyTick(c)
	case *saveTick:
		m.saveState(c, false)
	case *saveDone:
		m.saving = nil
	case *restartDue:
		m.handleRestartDue(msg)
	case *messages.Shutdown:
		m.handleShutdown(c)
	case *messages.InjectFault:
		m.handleInjectFault(c, msg)
	case *messages.ClearFaults:
		m.handleClearFaults(c, msg)
	case *messages.Crash:
		panic(msg.Reason)
	case *actor.Terminated:
		m.handleTerminated(c, msg)
	case *actor.Started:
		m.handleStarted(c)
	case *actor.Stopping, *actor.Restarting:
		m.halting = true
		m.backoffs.cancelAll()
		m.stopNotifyTimer()
		m.stopSaving()
	case *actor.Stopped:
		m.stopEnv()
	case *actor.Touch:
	default:
		m.unexpected.log(m.log, msg)
	}
}

// handleStarted spawns the notifier and, after a restart of the manager,
// every desired check again.
func (m *manager) handleStarted(c actor.Context) {
	notifier, err := c.SpawnNamed(m.cfg.Telemetry.Wrap("notifier",
		NewNotifier(NotifierConfig{
			Sink:       m.cfg.Sink,
			BatchSize:  m.cfg.BatchSize,
			BatchDelay: m.cfg.BatchDelay,
			Stats:      m.cfg.NotifierStats,
			Telemetry:  m.cfg.Telemetry,
			Logger:     m.cfg.Logger,
		})), notifierName)
	if err != nil {
		panic(fmt.Errorf("spawn notifier: %w", err))
	}
	m.root = c.ActorSystem().Root
	m.backoffs.start(c)
	m.stopEnv() // a restart's predecessor's
	m.env = &checkEnv{
		notifier:  notifier,
		newProber: m.cfg.NewProber,
		telemetry: m.cfg.Telemetry,
		limiter:   newStartLimiter(m.cfg.ProbeRate),
		clock:     newProbeClock(clockResolution, m.cfg.Logger),
		workers:   newProbeWorkers(workerIdle),
		jitter:    min(max(m.cfg.Jitter, 0), 1),
		logger:    m.cfg.Logger,
	}
	m.armSave(c)
	m.halting = false
	clear(m.pids)
	clear(m.stopping)
	for _, rec := range m.records {
		m.spawn(c, rec)
	}
	m.armNotify(c)
}

func (m *manager) handleUpdate(c actor.Context, msg *messages.UpdateConfigs) {
	m.cfg.Telemetry.configsReceived()
	if m.draining {
		m.answerUpdate(c, nil)
		return
	}
	configs, over := m.bounded(msg.Configs)
	m.reserve(len(configs))
	// Every record the update names is marked with its number; the
	// others are removed after.
	m.updates++
	var added, updated, unchanged int
	for _, cfg := range configs {
		rec, ok := m.records[cfg.ID]
		switch {
		case !ok:
			rec = m.add(c, cfg)
			added++
		case rec.cfgEqual(&cfg):
			unchanged++
		default:
			m.update(c, cfg)
			updated++
		}
		rec.named = m.updates
	}

	// A rejected config leaves its running check as it was.
	for _, rej := range msg.Rejected {
		m.cfg.Telemetry.configRejected(rej.Err)
		if rec := m.records[rej.ID]; rej.HasID && rec != nil {
			rec.named = m.updates
		}
	}
	removed := m.removeUnnamed(c)
	// The Engine sends its whole set every fetch: a set that changes
	// nothing is logged at debug, so info keeps only the changes. Configs
	// rejected before the manager are told elsewhere (the bridge logs each
	// skipped check once, a socket client gets an error line), and would
	// otherwise bring the same line back every fetch.
	ev := m.log.Info()
	if added+updated+removed+len(over) == 0 {
		ev = m.log.Debug()
	}
	ev.Int("added", added).Int("updated", updated).
		Int("unchanged", unchanged).Int("removed", removed).
		Int("rejected", len(msg.Rejected)+len(over)).
		Int("checks", len(m.records)).Msg("configs_applied")
	m.answerUpdate(c, over)
}

// reserve sizes the maps of checks for n of them when they are empty,
// as on the first fetch, so that adding them does not grow each map
// step by step (about 7% of the manager's CPU for 100,000 adds in
// BenchmarkApply's profile).
func (m *manager) reserve(n int) {
	if len(m.records) > 0 || len(m.pids) > 0 || n < reserveAtLeast {
		return
	}
	m.mu.Lock()
	m.records = make(map[uint64]*checkRecord, n)
	m.mu.Unlock()
	m.pids = make(map[uint64]*actor.PID, n)
}

// reserveAtLeast is the smallest update reserve sizes the maps for.
const reserveAtLeast = 1024

// answerUpdate tells an update's sender, if any, which configs the
// manager rejected.
func (m *manager) answerUpdate(c actor.Context, rejected []*messages.ConfigError) {
	if c.Sender() != nil {
		c.Respond(&messages.ConfigsApplied{Rejected: rejected})
	}
}

// bounded returns configs cut to MaxChecks, the running checks' configs
// first, then new ones in order, and an error for each config cut.
func (m *manager) bounded(configs []messages.Config) (
	[]messages.Config, []*messages.ConfigError) {
	if len(configs) <= m.cfg.MaxChecks {
		return configs, nil
	}
	reason := fmt.Errorf("%w: over the limit of %d (-max_checks); not applied",
		ErrTooManyChecks, m.cfg.MaxChecks)
	kept := make([]messages.Config, 0, m.cfg.MaxChecks)
	var over []*messages.ConfigError
	for _, running := range []bool{true, false} {
		for i, cfg := range configs {
			if _, ok := m.records[cfg.ID]; ok != running {
				continue
			}
			if len(kept) < m.cfg.MaxChecks {
				kept = append(kept, cfg)
				continue
			}
			over = append(over, &messages.ConfigError{
				Index: i, ID: cfg.ID, HasID: true, Err: reason,
			})
		}
	}
	m.cfg.Telemetry.configsOverLimit(len(over))
	var ids []uint64
	for _, ce := range over[:min(len(over), maxLoggedIDs)] {
		ids = append(ids, ce.ID)
	}
	m.log.Error().Int("configs", len(configs)).Int("max_checks", m.cfg.MaxChecks).
		Int("rejected", len(over)).Uints64("rejected_ids", ids).
		Msg("too_many_checks")
	return kept, over
}

// add creates and starts the check of cfg, and returns its record.
func (m *manager) add(c actor.Context, cfg messages.Config) *checkRecord {
	rec := newCheckRecord(cfg, m.cfg.Telemetry)
	m.cfg.Telemetry.checkAdded(cfg.Checker)
	m.restore(rec, &cfg)
	m.mu.Lock()
	m.records[cfg.ID] = rec
	m.mu.Unlock()
	m.sorted = nil
	m.spawn(c, rec)
	return rec
}

func (m *manager) update(c actor.Context, cfg messages.Config) {
	m.cfg.Telemetry.checkerChanged(m.records[cfg.ID].config().Checker, cfg.Checker)
	if pid, ok := m.pids[cfg.ID]; ok {
		c.Send(pid, &updateCheck{Config: cfg})
		return
	}
	// No live child (it is being respawned): it reads the record at start.
	m.records[cfg.ID].setConfig(cfg)
}

// removeUnnamed removes every check the latest update did not name, and
// returns how many it removed.
func (m *manager) removeUnnamed(c actor.Context) int {
	var gone []uint64
	for id, rec := range m.records {
		if rec.named != m.updates {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		m.sorted = nil
	}
	m.mu.Lock()
	for _, id := range gone {
		m.cfg.Telemetry.checkRemoved(m.records[id].detach())
		delete(m.records, id)
	}
	m.mu.Unlock()
	for _, id := range gone {
		if pid, ok := m.pids[id]; ok {
			delete(m.pids, id)
			m.stopping[pid.Id] = id
			m.backoffs.cancel(pid.Id)
			c.Stop(pid)
		}
	}
	return len(gone)
}

// spawn starts the check of rec, unless a child of the same ID is still
// stopping: its Terminated then spawns the new one.
func (m *manager) spawn(c actor.Context, rec *checkRecord) {
	name := strconv.FormatUint(rec.id, 10)
	pid, err := c.SpawnNamed(
		m.cfg.Telemetry.Wrap("check", newCheckProps(rec, m.env)), name)
	switch {
	case errors.Is(err, actor.ErrNameExists):
		// handleTerminated spawns it once the old child is gone.
	case err != nil:
		m.log.Error().Err(err).Uint64("id", rec.id).Msg("spawn_failed")
	default:
		m.pids[rec.id] = pid
	}
}

// stopEnv stops the clock and the probe workers of the checks, once the
// checks have stopped, and waits a bounded time for the workers: each
// check cancelled its probe, so they are idle, or finishing a probe that
// ignores its cancellation (logged by its worker).
func (m *manager) stopEnv() {
	if m.env == nil {
		return
	}
	m.env.clock.stop()
	m.env.workers.stop()
	if !m.env.workers.waitFor(workersStopWait) {
		m.log.Warn().Dur("waited", workersStopWait).
			Msg("probe_workers_still_busy")
	}
}

// handleShutdown stops every check, then the notifier once the checks'
// last notifications have reached it, then the manager itself.
func (m *manager) handleShutdown(c actor.Context) {
	if m.draining {
		return
	}
	m.draining = true
	m.stopNotifyTimer()
	m.stopSaving()
	m.saveState(c, true)
	m.log.Info().Int("checks", len(m.pids)).Msg("manager_draining")
	for id, pid := range m.pids {
		delete(m.pids, id)
		m.stopping[pid.Id] = id
		m.backoffs.cancel(pid.Id)
		c.Stop(pid)
	}
	m.drainProgress(c)
}

// drainProgress poisons the notifier once no check is left: the poison
// pill queues behind every notification the checks sent. The notifier's
// Terminated then stops the manager.
func (m *manager) drainProgress(c actor.Context) {
	if len(m.stopping) > 0 {
		return
	}
	if m.env.notifier != nil {
		c.Poison(m.env.notifier)
		return
	}
	c.Stop(c.Self())
}

// handleTerminated forgets a stopped child and starts its successor: the
// new check of a re-added ID, or the same check after the supervisor gave
// up restarting it.
func (m *manager) handleTerminated(c actor.Context, msg *actor.Terminated) {
	if m.halting {
		return
	}
	id, wasStopping := m.stopping[msg.Who.Id]
	delete(m.stopping, msg.Who.Id)
	if m.draining {
		if msg.Who.Equal(m.env.notifier) {
			m.env.notifier = nil
		}
		m.drainProgress(c)
		return
	}
	if !wasStopping {
		// A check stopped by nobody's request: start it again.
		var ok bool
		if id, ok = parseChildID(msg.Who.Id); !ok {
			return
		}
		if pid, live := m.pids[id]; !live || !pid.Equal(msg.Who) {
			return
		}
		delete(m.pids, id)
		m.log.Error().Uint64("id", id).Msg("check_terminated_restarting")
	}
	m.handleRespawn(c, id)
}

func (m *manager) handleRespawn(c actor.Context, id uint64) {
	if m.draining {
		return
	}
	rec, desired := m.records[id]
	if _, live := m.pids[id]; desired && !live {
		m.spawn(c, rec)
	}
}

// parseChildID returns the check ID of a child PID Id such as
// "manager/42".
func parseChildID(pidID string) (uint64, bool) {
	name := pidID[strings.LastIndexByte(pidID, '/')+1:]
	id, err := strconv.ParseUint(name, 10, 64)
	return id, err == nil
}

// sortedRecords returns every check's record, by ascending ID. The slice
// is kept until the set of checks changes, and must not be modified.
func (m *manager) sortedRecords() []*checkRecord {
	if m.sorted == nil {
		m.sorted = slices.SortedFunc(maps.Values(m.records),
			func(a, b *checkRecord) int { return cmp.Compare(a.id, b.id) })
	}
	return m.sorted
}

// statusResponse returns every check's status, ordered by ID.
func (m *manager) statusResponse() *messages.StatusResponse {
	recs := m.sortedRecords()
	statuses := make([]messages.CheckStatus, len(recs))
	now := time.Now()
	for i, rec := range recs {
		statuses[i] = messages.CheckStatus{ID: rec.id, Status: rec.reply(now)}
	}
	return &messages.StatusResponse{Statuses: statuses}
}

// report returns every check as operators see it, ordered by ID.
func (m *manager) report() *messages.StatusReport {
	recs := m.sortedRecords()
	checks := make([]messages.CheckReport, len(recs))
	now := time.Now()
	for i, rec := range recs {
		checks[i] = rec.report(now)
	}
	return &messages.StatusReport{Checks: checks}
}

// handleNotifyTick sends the next slice of the periodic full status to
// the notifier, starting a round over every check when the last one is
// done (periodic.go). It leaves out checks that have not finished a probe
// yet: an Unknown would take a healthy backend out of service after a
// restart (Seesaw does so).
func (m *manager) handleNotifyTick(c actor.Context) {
	if m.round.done() {
		recs := m.sortedRecords()
		ids := make([]uint64, len(recs))
		for i, rec := range recs {
			ids[i] = rec.id
		}
		m.round = newPeriodicRound(ids, m.cfg.NotifyInterval)
	}
	now := time.Now()
	ids := m.round.take()
	batch := make([]messages.CheckStatus, 0, len(ids))
	for _, id := range ids {
		rec, ok := m.records[id]
		if !ok {
			continue // removed during the round
		}
		if st, ok := rec.periodic(now); ok {
			batch = append(batch, messages.CheckStatus{ID: id, Status: st})
		}
	}
	if len(batch) > 0 {
		c.Send(m.env.notifier, &messages.NotificationBatch{Notifications: batch,
			Periodic: true})
	}
	m.armNotifyIn(c, m.round.gap)
}

// armNotify plans the first slice of the periodic full status one notify
// interval from now.
func (m *manager) armNotify(c actor.Context) {
	m.armNotifyIn(c, m.cfg.NotifyInterval)
}

func (m *manager) armNotifyIn(c actor.Context, d time.Duration) {
	self, root := c.Self(), c.ActorSystem().Root
	m.notifyTimer = time.AfterFunc(d, func() {
		root.Send(self, &notifyTick{})
	})
}

func (m *manager) stopNotifyTimer() {
	if m.notifyTimer != nil {
		m.notifyTimer.Stop()
		m.notifyTimer = nil
	}
}
