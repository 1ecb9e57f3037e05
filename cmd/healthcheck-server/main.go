// Command healthcheck-server probes load-balancer backends and reports
// their state changes: a drop-in replacement for Seesaw's
// seesaw_healthcheck, built on an actor per check.
//
// Exit status: 0 after a clean stop; 1 when the server cannot start or
// stop cleanly, when -exit_on_max_failures ends it, or when its tree
// stops by itself; 2 for bad flags.
//
// The subcommands inject and clear inject faults into a running server
// started with -enable_fault_injection; see runFault.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/bridge"
)

// stopTimeout bounds a graceful stop after SIGINT or SIGTERM.
const stopTimeout = 20 * time.Second

// config holds the server's flags.
type config struct {
	batchDelay     time.Duration
	batchSize      int
	channelSize    int
	engine         string
	maxFailures    int
	notifyInterval time.Duration
	fetchInterval  time.Duration
	retryDelay     time.Duration
	dryRun         bool
	exitOnFailures bool
	proxySocket    string
	socketMode     string
	socketGroup    string
	allowUIDs      string
	maxClients     int
	maxLineBytes   int
	maxConfigs     int
	maxChecks      int
	probeRate      float64
	tcpResetClose  bool
	jitter         float64
	stateFile      string
	stateInterval  time.Duration
	restorePolicy  string
	configFile     string
	allowShutdown  bool
	enableFaults   bool
	libMetrics     bool
	metricsAddr    string
	logLevel       string
	logFormat      string

	// bridgeStats is set by serve when the bridge runs.
	bridgeStats *bridge.EdgeStats
}

// defaultConfig returns the defaults: Seesaw's flag defaults and socket
// paths.
func defaultConfig() config {
	return config{
		batchDelay:     actors.DefaultBatchDelay,
		batchSize:      actors.DefaultBatchSize,
		channelSize:    actors.DefaultClientQueue,
		engine:         "/var/run/seesaw/engine/engine.sock",
		maxFailures:    10,
		notifyInterval: actors.DefaultNotifyInterval,
		fetchInterval:  15 * time.Second,
		retryDelay:     2 * time.Second,
		proxySocket:    "/var/run/seesaw/healthcheck-proxy.sock",
		socketMode:     "0600",
		maxClients:     actors.DefaultMaxClients,
		maxLineBytes:   actors.DefaultMaxLineBytes,
		maxConfigs:     actors.DefaultMaxConfigs,
		maxChecks:      actors.DefaultMaxChecks,
		stateInterval:  actors.DefaultStateSaveInterval,
		restorePolicy:  actors.RestoreConfirm,
		metricsAddr:    "127.0.0.1:10258",
		logLevel:       "info",
		logFormat:      "json",
	}
}

// validate reports a flag value that cannot work.
func (c *config) validate() error {
	switch c.restorePolicy {
	case actors.RestoreConfirm, actors.RestoreInterval:
	default:
		return fmt.Errorf("-restore_policy: want %s or %s, got %q",
			actors.RestoreConfirm, actors.RestoreInterval, c.restorePolicy)
	}
	return nil
}

func (c *config) register(fs *flag.FlagSet) {
	fs.DurationVar(&c.batchDelay, "batch_delay", c.batchDelay,
		"longest a notification waits for its batch to fill")
	fs.IntVar(&c.batchSize, "batch_size", c.batchSize,
		"most notifications in one batch")
	fs.IntVar(&c.channelSize, "channel_size", c.channelSize,
		"lines queued per socket client; beyond it a slow client's "+
			"notifications wait in a backlog keeping the newest state per "+
			"check, and its replies wait in order (up to 1000, then dropped)")
	fs.StringVar(&c.engine, "engine", c.engine,
		"Seesaw Engine socket; empty disables the Engine bridge")
	fs.IntVar(&c.maxFailures, "max_failures", c.maxFailures,
		"consecutive failed Engine calls before the bridge alarms and backs off")
	fs.DurationVar(&c.notifyInterval, "notify_interval", c.notifyInterval,
		"how often every check's status is re-sent")
	fs.DurationVar(&c.fetchInterval, "fetch_interval", c.fetchInterval,
		"how often configs are fetched from the Engine")
	fs.DurationVar(&c.retryDelay, "retry_delay", c.retryDelay,
		"delay between retries of a failed Engine call")
	fs.BoolVar(&c.exitOnFailures, "exit_on_max_failures", c.exitOnFailures,
		"exit (status 1) after -max_failures failed Engine calls, as Seesaw exits")
	fs.BoolVar(&c.dryRun, "dry_run", c.dryRun,
		"succeed every probe without touching the network")
	fs.StringVar(&c.proxySocket, "proxy_socket", c.proxySocket,
		"JSON-lines unix socket; empty disables it")
	fs.StringVar(&c.socketMode, "socket_mode", c.socketMode,
		"permission bits of the proxy socket, in octal")
	fs.StringVar(&c.socketGroup, "socket_group", c.socketGroup,
		"group owning the proxy socket (name or number); use with -socket_mode 0660")
	fs.StringVar(&c.allowUIDs, "allow_uid", c.allowUIDs,
		"comma-separated user IDs allowed on the socket besides the server's own")
	fs.IntVar(&c.maxClients, "max_clients", c.maxClients,
		"most socket clients at once")
	fs.IntVar(&c.maxLineBytes, "max_line_bytes", c.maxLineBytes,
		"longest line a socket client may send")
	fs.IntVar(&c.maxConfigs, "max_configs_per_message", c.maxConfigs,
		"most configs in one update_configs")
	fs.IntVar(&c.maxChecks, "max_checks", c.maxChecks,
		"most checks run at once, from any source")
	fs.Float64Var(&c.probeRate, "probe_rate", c.probeRate,
		"most probe starts per second across all checks; 0: no limit")
	fs.BoolVar(&c.tcpResetClose, "tcp_reset_close", c.tcpResetClose,
		"close TCP probes (tcp, http, dns over TCP) with a reset, leaving no TIME_WAIT")
	fs.Float64Var(&c.jitter, "jitter", c.jitter,
		"delay each start by a random part of up to jitter × interval (0-1)")
	fs.StringVar(&c.stateFile, "state_file", c.stateFile,
		"file keeping every check's last state across restarts; empty: none")
	fs.DurationVar(&c.stateInterval, "state_save_interval", c.stateInterval,
		"how often the state file is written (and at shutdown)")
	fs.StringVar(&c.restorePolicy, "restore_policy", c.restorePolicy,
		"when a restored state rejoins the periodic status: confirm (after a "+
			"fresh probe) or interval (after one interval)")
	fs.StringVar(&c.configFile, "config", c.configFile,
		"JSON or YAML file of checks, reloaded on SIGHUP and on change; "+
			"replaces -engine (see README.md)")
	fs.BoolVar(&c.allowShutdown, "allow_shutdown", c.allowShutdown,
		"let socket clients stop the server with a shutdown message")
	fs.BoolVar(&c.enableFaults, "enable_fault_injection", c.enableFaults,
		"let socket clients inject faults (see the inject and clear subcommands)")
	fs.BoolVar(&c.libMetrics, "actor_lib_metrics", c.libMetrics,
		"also export the actor library's own metrics (costly; see README)")
	fs.StringVar(&c.metricsAddr, "metrics_addr", c.metricsAddr,
		"HTTP listener for operators; empty disables it")
	fs.StringVar(&c.logLevel, "log_level", c.logLevel,
		"debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log_format", c.logFormat, "json or console")
}

func main() {
	holdHangups()
	if len(os.Args) > 1 && (os.Args[1] == "inject" || os.Args[1] == "clear") {
		os.Exit(runFault(os.Args[1], os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

// holdHangups keeps SIGHUP from ever ending the process (its default
// action): while the server runs, startReloads acts on it; before and
// after, it lands in a channel nobody reads. It lasts as long as the
// process.
func holdHangups() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
}

func run(args []string, stderr io.Writer) int {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("healthcheck-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.register(fs)
	var glog glogFlags
	glog.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	glog.apply(fs, &cfg)
	logger, err := actors.NewLogger(stderr, cfg.logFormat, cfg.logLevel)
	if err == nil {
		err = cfg.validate()
	}
	if err == nil {
		err = cfg.checkSources(fs)
	}
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck-server: %v\n", err)
		return 2
	}
	if len(glog.ignored) > 0 {
		logger.Info().Strs("flags", glog.ignored).Msg("seesaw_glog_flags_ignored")
	}
	if err := serve(cfg, logger); err != nil {
		logger.Error().Err(err).Msg("server_failed")
		return 1
	}
	return 0
}

// serve runs the server until SIGINT, SIGTERM or an allowed shutdown
// request, then stops it.
func serve(cfg config, logger zerolog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(),
		syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	stats := operatorStats(&cfg)
	checks, err := openConfigFile(cfg.configFile, logger)
	if err != nil {
		return err
	}
	var fatal atomic.Pointer[error]
	edges, err := buildEdges(cfg, logger, stats.Proxy, stop, func(err error) {
		fatal.Store(&err)
		stop()
	})
	if err != nil {
		return err
	}
	operators, err := listenOperators(cfg.metricsAddr)
	if err != nil {
		closeEdges(edges)
		return err
	}
	tel := actors.NewTelemetry()
	var sysOpts []actor.ConfigOption
	if cfg.libMetrics {
		opt, err := libraryMetrics(tel.Registry())
		if err != nil {
			closeEdges(edges)
			return err
		}
		sysOpts = append(sysOpts, opt)
	}
	svc, err := actors.Start(actors.ServiceConfig{
		Manager:       managerConfig(cfg, logger, stats),
		Edges:         edges,
		Logger:        logger,
		Telemetry:     tel,
		SystemOptions: sysOpts,
	})
	if err != nil {
		if operators != nil {
			operators.Close()
		}
		return err
	}
	logger.Info().Bool("dry_run", cfg.dryRun).Msg("server_started")
	stopReloads := startReloads(checks, svc, logger)
	sd := startSystemd(cfg, svc, logger)
	var httpSrv *http.Server
	if operators != nil {
		httpSrv = serveOperators(operators, svc.OperatorHandler(stats), logger)
	}

	select {
	case <-ctx.Done():
	case <-svc.Done():
	}
	logger.Info().Msg("server_stopping")
	// One bound for the whole stop, the watchdog's last probe included.
	stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	sd.stopping()
	stopReloads()
	if httpSrv != nil {
		httpSrv.Shutdown(stopCtx)
	}
	if err := svc.Stop(stopCtx); err != nil {
		return err
	}
	logger.Info().Msg("server_stopped")
	if err := fatal.Load(); err != nil {
		return *err
	}
	return svc.Err()
}

// operatorStats returns the stats the operators' handler exports. With
// the Engine bridge they hold the bridge's, by which /healthz judges the
// Engine, and cfg.bridgeStats is set to those for engineEdge and
// readiness.
func operatorStats(cfg *config) actors.OperatorStats {
	stats := actors.OperatorStats{
		Notifier: &actors.NotifierStats{},
		Proxy:    &actors.ProxyStats{},
		Faults:   &actors.FaultStats{},
	}
	if cfg.engine == "" {
		return stats
	}
	cfg.bridgeStats = &bridge.EdgeStats{}
	stats.Extra = append(stats.Extra, cfg.bridgeStats)
	stats.Engine = cfg.bridgeStats.Watch(cfg.edgeConfig())
	return stats
}

// buildEdges returns the socket proxy and the Engine bridge that cfg asks
// for. stop ends the server on a client's shutdown request; onFatal ends
// it after -max_failures when -exit_on_max_failures is set.
func buildEdges(cfg config, logger zerolog.Logger, stats *actors.ProxyStats,
	stop func(), onFatal func(error)) ([]actors.Edge, error) {
	var edges []actors.Edge
	if cfg.proxySocket != "" {
		proxy, err := listenProxy(cfg, logger, stats, stop)
		if err != nil {
			return nil, err
		}
		edges = append(edges, proxy)
	}
	if cfg.engine != "" {
		edges = append(edges, engineEdge(cfg, logger, onFatal))
	}
	return edges, nil
}

func managerConfig(cfg config, logger zerolog.Logger,
	stats actors.OperatorStats) actors.ManagerConfig {
	mcfg := actors.DefaultManagerConfig()
	mcfg.NotifyInterval = cfg.notifyInterval
	mcfg.BatchSize = cfg.batchSize
	mcfg.BatchDelay = cfg.batchDelay
	mcfg.DryRun = cfg.dryRun
	mcfg.MaxChecks = cfg.maxChecks
	mcfg.ProbeRate = cfg.probeRate
	mcfg.Jitter = cfg.jitter
	mcfg.ProbeOptions.ResetClose = cfg.tcpResetClose
	mcfg.StateFile = cfg.stateFile
	mcfg.StateSaveInterval = cfg.stateInterval
	mcfg.RestorePolicy = cfg.restorePolicy
	mcfg.NotifierStats = stats.Notifier
	mcfg.FaultStats = stats.Faults
	mcfg.Logger = logger
	return mcfg
}

// listenOperators opens the operators' listener, or returns nil for an
// empty address.
func listenOperators(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics_addr: %w", err)
	}
	return ln, nil
}

// serveOperators serves the operators' endpoints on ln until Shutdown.
func serveOperators(ln net.Listener, h http.Handler, logger zerolog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	logger.Info().Str("addr", ln.Addr().String()).Msg("operators_listening")
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error().Err(err).Msg("operators_listener_failed")
		}
	}()
	return srv
}

// edgeConfig returns the Engine bridge's timing from the flags.
func (c *config) edgeConfig() bridge.EdgeConfig {
	return bridge.EdgeConfig{
		FetchInterval: c.fetchInterval,
		RetryDelay:    c.retryDelay,
		MaxFailures:   c.maxFailures,
	}
}

// engineEdge returns the in-process Engine bridge. onFatal is called when
// -exit_on_max_failures asks for Seesaw's exit after -max_failures.
func engineEdge(cfg config, logger zerolog.Logger, onFatal func(error)) actors.Edge {
	ecfg := cfg.edgeConfig()
	ecfg.Engine = bridge.NewEngineClient(cfg.engine, 0)
	ecfg.Stats = cfg.bridgeStats
	ecfg.Logger = logger
	if cfg.exitOnFailures {
		ecfg.OnMaxFailures = onFatal
	}
	return actors.Edge{Name: "bridge", Props: bridge.NewEdge(ecfg)}
}

func closeEdges(edges []actors.Edge) {
	for _, e := range edges {
		if e.Close != nil {
			e.Close()
		}
	}
}

func listenProxy(cfg config, logger zerolog.Logger, stats *actors.ProxyStats,
	stop func()) (actors.Edge, error) {
	mode, err := strconv.ParseUint(cfg.socketMode, 8, 32)
	if err != nil || mode > 0o777 {
		return actors.Edge{}, fmt.Errorf("-socket_mode: invalid mode %q", cfg.socketMode)
	}
	uids, err := parseUIDs(cfg.allowUIDs)
	if err != nil {
		return actors.Edge{}, err
	}
	return actors.ListenProxy(actors.ProxyConfig{
		Path:                 cfg.proxySocket,
		Mode:                 os.FileMode(mode),
		Group:                cfg.socketGroup,
		AllowUIDs:            uids,
		MaxClients:           cfg.maxClients,
		MaxLineBytes:         cfg.maxLineBytes,
		MaxConfigs:           cfg.maxConfigs,
		ClientQueue:          cfg.channelSize,
		AllowShutdown:        cfg.allowShutdown,
		EnableFaultInjection: cfg.enableFaults,
		OnShutdown:           stop,
		Stats:                stats,
		Logger:               logger,
	})
}

// parseUIDs parses -allow_uid's comma-separated user IDs.
func parseUIDs(list string) ([]uint32, error) {
	var uids []uint32
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' }) {
		uid, err := strconv.ParseUint(strings.TrimSpace(f), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("-allow_uid: %q is not a user ID", f)
		}
		uids = append(uids, uint32(uid))
	}
	return uids, nil
}
