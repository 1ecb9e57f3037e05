package tests

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
)

// Timing of the Engine bridge in the Engine suites: short, so that a
// fetch, a retry and a reconnect each take a fraction of a check's
// interval.
const (
	engineFetchInterval = 200 * time.Millisecond
	engineRetryDelay    = 20 * time.Millisecond
	engineMaxFailures   = 3
	engineMaxBackoff    = 100 * time.Millisecond
	// engineRPCTimeout bounds one Engine call, dial included.
	engineRPCTimeout = 2 * time.Second
	// linkReconnectDelay and linkMaxReconnect bound how long the split
	// bridge waits before it dials a restarted server again.
	linkReconnectDelay = 50 * time.Millisecond
	linkMaxReconnect   = 200 * time.Millisecond
)

// The simulated Engine's numbering and memory in the Engine suites.
const (
	// engineIDBase is the ID of the first check the Engine numbers.
	engineIDBase = 0x2A << 48
	// engineHistory is how many notifications the Engine remembers:
	// more than any test receives.
	engineHistory = 1 << 14
)

// newEngine returns a simulated Engine configured by cfg that does not
// listen yet, and the short socket path it is meant to listen on. Zero
// IDBase and History take engineIDBase and engineHistory. The Engine is
// closed when the test ends, after everything started later (the bridge)
// has stopped.
func newEngine(t testing.TB, cfg enginesim.Config) (*enginesim.Server, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "eng")
	if err != nil {
		t.Fatalf("making socket dir: %v", err)
	}
	if cfg.IDBase == 0 {
		cfg.IDBase = engineIDBase
	}
	if cfg.History == 0 {
		cfg.History = engineHistory
	}
	sim := enginesim.New(cfg)
	t.Cleanup(func() {
		if err := sim.Close(); err != nil {
			t.Errorf("closing the Engine: %v", err)
		}
		os.RemoveAll(dir)
	})
	return sim, filepath.Join(dir, "engine.sock")
}

// startEngine returns a simulated Engine listening on a fresh socket, and
// the socket's path.
func startEngine(t testing.TB) (*enginesim.Server, string) {
	t.Helper()
	sim, path := newEngine(t, enginesim.Config{Logger: newLogger(t)})
	listenEngine(t, sim, path)
	return sim, path
}

// listenEngine makes sim listen on path.
func listenEngine(t testing.TB, sim *enginesim.Server, path string) {
	t.Helper()
	if err := sim.Listen(path); err != nil {
		t.Fatalf("Engine Listen: %v", err)
	}
}

// setEngineChecks makes checks the Engine's complete set and returns
// their IDs, in order.
func setEngineChecks(
	t testing.TB, sim *enginesim.Server, checks ...enginesim.Check,
) []uint64 {
	t.Helper()
	u, err := sim.SetChecks(checks)
	if err != nil {
		t.Fatalf("Engine SetChecks: %v", err)
	}
	return u.IDs
}

// engineCheck returns a check of typ aimed at target with the suite's
// interval and timeout, as the Engine's cluster config would give it.
func engineCheck(typ string, target netip.AddrPort) enginesim.Check {
	return enginesim.Check{
		Type:     typ,
		IP:       target.Addr().String(),
		Port:     int(target.Port()),
		Interval: checkInterval,
		Timeout:  checkTimeout,
	}
}

// waitEngine waits until cond holds for the Engine's snapshot, and fails
// the test if it does not within waitTimeout. It returns the snapshot
// that satisfied cond.
func waitEngine(
	t testing.TB, sim *enginesim.Server, what string,
	cond func(*enginesim.Snapshot) bool,
) *enginesim.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var last *enginesim.Snapshot
	err := sim.WaitFor(ctx, func(s *enginesim.Snapshot) bool {
		last = s
		return cond(s)
	})
	if err != nil {
		t.Fatalf("waiting for %s in the Engine: %v\ncounts %+v\nstates:\n%s",
			what, err, last.Counts, dumpEngineStates(last.States))
	}
	return last
}

// statesAre returns a condition that holds once the Engine's state of
// every ID of want is the one want names.
func statesAre(want map[uint64]messages.State) func(*enginesim.Snapshot) bool {
	return func(s *enginesim.Snapshot) bool {
		for id, st := range want {
			got, ok := s.States[id]
			if !ok || messages.State(got.State) != st {
				return false
			}
		}
		return true
	}
}

// notifiedSince returns a condition that holds once the Engine has
// received a notification of every one of ids at or after since.
func notifiedSince(since time.Time, ids ...uint64) func(*enginesim.Snapshot) bool {
	return func(s *enginesim.Snapshot) bool {
		seen := make(map[uint64]bool)
		for _, r := range s.Received {
			if !r.At.Before(since) {
				seen[r.Notification.Id] = true
			}
		}
		for _, id := range ids {
			if !seen[id] {
				return false
			}
		}
		return true
	}
}

// receivedOf returns the notifications of id in received, oldest first.
func receivedOf(received []enginesim.Received, id uint64) []enginesim.Received {
	var out []enginesim.Received
	for _, r := range received {
		if r.Notification.Id == id {
			out = append(out, r)
		}
	}
	return out
}

// dumpEngineStates lists states by ID, for failure messages.
func dumpEngineStates(states map[uint64]bridge.Status) string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(states)) {
		st := states[id]
		fmt.Fprintf(&b, "  %d %v %q\n", id, messages.State(st.State), st.Message)
	}
	return b.String()
}

// stackOptions configures a server and the Engine bridge that feeds it;
// zero fields take the defaults that applyDefaults documents.
type stackOptions struct {
	// NotifyInterval defaults to a minute, so that periodic full statuses
	// stay out of tests that do not ask for them.
	NotifyInterval time.Duration
	// BatchSize defaults to the server's; BatchDelay to 20ms.
	BatchSize  int
	BatchDelay time.Duration
	// The bridge's timing defaults to the engine constants above.
	FetchInterval time.Duration
	RetryDelay    time.Duration
	MaxFailures   int
	MaxBackoff    time.Duration
	OnMaxFailures func(error)
	// RPCTimeout bounds each Engine call; default engineRPCTimeout.
	RPCTimeout time.Duration
	// Quiet logs warnings and errors only, as benchmarks need: their log
	// lines are always printed.
	Quiet bool
	// Log, if set, receives the log lines too.
	Log io.Writer
	// StateFile, if set, is the manager's state file.
	StateFile string
	// FaultInjection lets the test crash the tree's actors.
	FaultInjection bool
	// FaultStats, if set, counts the server's restarts and faults.
	FaultStats *actors.FaultStats
	// MaxChecks, if set, bounds the checks the server runs.
	MaxChecks int
}

func (o *stackOptions) applyDefaults() {
	if o.NotifyInterval == 0 {
		o.NotifyInterval = time.Minute
	}
	if o.BatchDelay == 0 {
		o.BatchDelay = 20 * time.Millisecond
	}
	if o.FetchInterval == 0 {
		o.FetchInterval = engineFetchInterval
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = engineRetryDelay
	}
	if o.MaxFailures == 0 {
		o.MaxFailures = engineMaxFailures
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = engineMaxBackoff
	}
	if o.RPCTimeout == 0 {
		o.RPCTimeout = engineRPCTimeout
	}
}

// logger returns the stack's logger.
func (o *stackOptions) logger(t testing.TB) zerolog.Logger {
	logger := newLogger(t)
	if o.Log != nil {
		// As newLogger's, this writer stops at the test's end.
		w := &testLogWriter{t: t}
		t.Cleanup(func() {
			w.mu.Lock()
			w.done = true
			w.mu.Unlock()
		})
		logger = logger.Output(zerolog.MultiLevelWriter(w, o.Log))
	}
	if o.Quiet {
		logger = logger.Level(zerolog.WarnLevel)
	}
	return logger
}

// logBuffer collects log lines; it is safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines that contain every one of words.
func (l *logBuffer) lines(words ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for line := range strings.Lines(l.b.String()) {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}

// managerConfig returns the manager's config for o.
func (o *stackOptions) managerConfig(logger zerolog.Logger) actors.ManagerConfig {
	mcfg := actors.DefaultManagerConfig()
	mcfg.NotifyInterval = o.NotifyInterval
	mcfg.BatchDelay = o.BatchDelay
	if o.BatchSize != 0 {
		mcfg.BatchSize = o.BatchSize
	}
	mcfg.Logger = logger
	mcfg.StateFile = o.StateFile
	mcfg.RestartBackoffMin = time.Millisecond
	mcfg.RestartBackoffMax = 50 * time.Millisecond
	mcfg.FaultStats = o.FaultStats
	if o.MaxChecks != 0 {
		mcfg.MaxChecks = o.MaxChecks
	}
	return mcfg
}

// edgeConfig returns the bridge's config for o, talking to the Engine at
// engineSock and counting into stats.
func (o *stackOptions) edgeConfig(
	engineSock string, stats *bridge.EdgeStats, logger zerolog.Logger,
) bridge.EdgeConfig {
	return bridge.EdgeConfig{
		Engine:        bridge.NewEngineClient(engineSock, o.RPCTimeout),
		FetchInterval: o.FetchInterval,
		RetryDelay:    o.RetryDelay,
		MaxFailures:   o.MaxFailures,
		MaxBackoff:    o.MaxBackoff,
		OnMaxFailures: o.OnMaxFailures,
		Stats:         stats,
		Logger:        logger,
	}
}

// engineStack is a whole server fed by the Engine bridge, in one of the
// two deployments: the bridge inside the server (in-process), or the
// bridge in an actor system of its own that reaches the server over its
// socket (split). It is not safe for concurrent use.
type engineStack struct {
	mode string
	// stats counts what the bridge did.
	stats *bridge.EdgeStats

	// svc is the in-process server, bridge included.
	svc *actors.Service

	// srv is the split deployment's server, sys and split its bridge,
	// which talks to the Engine at engineSock; split is nil while the
	// bridge is stopped.
	srv        *server
	sys        *actor.ActorSystem
	split      *bridge.Split
	engineSock string
	opts       stackOptions
	logger     zerolog.Logger
}

// engineMode is one deployment of the bridge.
type engineMode struct {
	name string
	// start starts a server and a bridge to the Engine at engineSock;
	// both stop when the test ends.
	start func(t testing.TB, engineSock string, opts stackOptions) *engineStack
}

// engineModes are the deployments every end-to-end Engine test runs in.
var engineModes = []engineMode{
	{name: "in-process", start: startInProcess},
	{name: "split", start: startSplit},
}

// splitMode is the split deployment of engineModes.
var splitMode = engineModes[1]

// forEachMode runs test as a subtest in every deployment. The subtests
// run in parallel: each has its own Engine, server and backends, and
// most of their time is spent waiting.
func forEachMode(t *testing.T, test func(t *testing.T, mode engineMode)) {
	t.Helper()
	for _, m := range engineModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			test(t, m)
		})
	}
}

// startInProcess starts a server with the bridge as one of its edges, as
// healthcheck-server -engine does.
func startInProcess(t testing.TB, engineSock string, opts stackOptions) *engineStack {
	t.Helper()
	opts.applyDefaults()
	logger := opts.logger(t)
	s := &engineStack{mode: "in-process", stats: &bridge.EdgeStats{}}
	edge := actors.Edge{
		Name:  "bridge",
		Props: bridge.NewEdge(opts.edgeConfig(engineSock, s.stats, logger)),
	}
	svc, err := actors.Start(actors.ServiceConfig{
		Manager: opts.managerConfig(logger),
		Edges:   []actors.Edge{edge},
		Logger:  logger,
	})
	if err != nil {
		t.Fatalf("actors.Start: %v", err)
	}
	s.svc = svc
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("stopping the server: %v", err)
		}
	})
	return s
}

// startSplit starts a server with its socket, and the bridge in an actor
// system of its own linked to that socket, as healthcheck-proxy does.
func startSplit(t testing.TB, engineSock string, opts stackOptions) *engineStack {
	t.Helper()
	opts.applyDefaults()
	dir, err := os.MkdirTemp("", "hc")
	if err != nil {
		t.Fatalf("making socket dir: %v", err)
	}
	s := &engineStack{
		mode:       "split",
		stats:      &bridge.EdgeStats{},
		engineSock: engineSock,
		opts:       opts,
		logger:     opts.logger(t),
	}
	s.srv = listenServer(t, filepath.Join(dir, "hc.sock"), opts, s.logger)
	// The bridge stops first, so that it flushes to the Engine, then the
	// server it was linked to.
	t.Cleanup(func() {
		s.stopBridge(t)
		s.srv.stop(t)
		os.RemoveAll(dir)
	})
	s.startBridge(t)
	return s
}

// startBridge starts the split deployment's bridge in an actor system of
// its own.
func (s *engineStack) startBridge(t testing.TB) {
	t.Helper()
	s.sys = actors.NewSystem(s.logger)
	link := bridge.LinkConfig{
		Socket:            s.srv.path,
		ReconnectDelay:    linkReconnectDelay,
		MaxReconnectDelay: linkMaxReconnect,
		Logger:            s.logger,
	}
	split, err := bridge.StartSplit(s.sys, link,
		s.opts.edgeConfig(s.engineSock, s.stats, s.logger), nil)
	if err != nil {
		s.sys.Shutdown()
		t.Fatalf("StartSplit: %v", err)
	}
	s.split = split
}

// stopBridge stops the split deployment's bridge, if it runs, as
// healthcheck-proxy does on SIGTERM.
func (s *engineStack) stopBridge(t testing.TB) {
	t.Helper()
	if s.split == nil {
		return
	}
	if err := s.split.Stop(); err != nil {
		t.Errorf("stopping the split bridge: %v", err)
	}
	s.sys.Shutdown()
	s.split = nil
}

// listenServer starts a server on a socket at path, with the proxy as its
// only edge. The caller stops it.
func listenServer(
	t testing.TB, path string, opts stackOptions, logger zerolog.Logger,
) *server {
	t.Helper()
	s := &server{path: path, stats: &actors.ProxyStats{}}
	edge, err := actors.ListenProxy(actors.ProxyConfig{
		Path:   path,
		Stats:  s.stats,
		Logger: logger,
	})
	if err != nil {
		t.Fatalf("ListenProxy: %v", err)
	}
	s.svc, err = actors.Start(actors.ServiceConfig{
		Manager: opts.managerConfig(logger),
		Edges:   []actors.Edge{edge},
		Logger:  logger,
	})
	if err != nil {
		t.Fatalf("actors.Start: %v", err)
	}
	return s
}

// service returns the server that runs the checks.
func (s *engineStack) service() *actors.Service {
	if s.srv != nil {
		return s.srv.svc
	}
	return s.svc
}

// stopServer stops the split deployment's server, leaving its bridge
// running.
func (s *engineStack) stopServer(t testing.TB) {
	t.Helper()
	if s.srv == nil {
		t.Fatalf("stopServer: the %s deployment has no server of its own", s.mode)
	}
	s.srv.stop(t)
}

// restartServer starts a new server on the socket of the split
// deployment's stopped server.
func (s *engineStack) restartServer(t testing.TB) {
	t.Helper()
	s.srv = listenServer(t, s.srv.path, s.opts, s.logger)
}

// truth returns the server's status of every check by ID: what the
// Engine must end up with.
func (s *engineStack) truth(t testing.TB) map[uint64]messages.Status {
	t.Helper()
	svc := s.service()
	res, err := svc.System().Root.
		RequestFuture(svc.Manager(), &messages.RequestStatus{}, waitTimeout).
		Result()
	if err != nil {
		t.Fatalf("requesting the server's status: %v", err)
	}
	sr, ok := res.(*messages.StatusResponse)
	if !ok {
		t.Fatalf("server answered the status request with %T", res)
	}
	out := make(map[uint64]messages.Status, len(sr.Statuses))
	for _, cs := range sr.Statuses {
		out[cs.ID] = cs.Status
	}
	return out
}

// waitTruth polls the server's status until cond holds for it, and fails
// the test if it does not within waitTimeout.
func (s *engineStack) waitTruth(
	t testing.TB, what string, cond func(map[uint64]messages.Status) bool,
) map[uint64]messages.Status {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		truth := s.truth(t)
		if cond(truth) {
			return truth
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s in the server: timed out after %v; status:\n%s",
				what, waitTimeout, dumpTruth(truth))
		}
		time.Sleep(pollEvery)
	}
}

// truthStatesAre returns a condition that holds once the server's state
// of every ID of want is the one want names.
func truthStatesAre(
	want map[uint64]messages.State,
) func(map[uint64]messages.Status) bool {
	return func(truth map[uint64]messages.Status) bool {
		for id, st := range want {
			if got, ok := truth[id]; !ok || got.State != st {
				return false
			}
		}
		return true
	}
}

// dumpTruth lists a server's statuses by ID, for failure messages.
func dumpTruth(truth map[uint64]messages.Status) string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(truth)) {
		st := truth[id]
		fmt.Fprintf(&b, "  %d %v %q\n", id, st.State, st.Message)
	}
	return b.String()
}

// checkEngineHasTruth fails the test unless the Engine serves exactly
// the server's checks and holds the server's state of each.
func checkEngineHasTruth(
	t testing.TB, sim *enginesim.Server, truth map[uint64]messages.Status,
) {
	t.Helper()
	served := slices.Sorted(maps.Keys(sim.Configs()))
	if got := slices.Sorted(maps.Keys(truth)); !slices.Equal(got, served) {
		t.Errorf("server runs checks %v, want the Engine's %v", got, served)
	}
	states := sim.States()
	for _, id := range served {
		got, ok := states[id]
		switch {
		case !ok:
			t.Errorf("check %d: the Engine has no state, want %v", id, truth[id].State)
		case messages.State(got.State) != truth[id].State:
			t.Errorf("check %d: the Engine has %v %q, want the server's %v %q",
				id, messages.State(got.State), got.Message,
				truth[id].State, truth[id].Message)
		}
	}
}
