// Command healthcheck-proxy is the Engine bridge as a process of its own:
// it fetches configs from the Seesaw Engine, hands them to a
// healthcheck-server over its JSON-lines socket, and reports the server's
// notifications back to the Engine.
//
// Exit status: 0 after a clean stop; 1 when it cannot start, when
// -exit_on_max_failures ended it, or when its actors stopped for good; 2
// for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/bridge"
)

type config struct {
	engineSocket   string
	serverSocket   string
	fetchInterval  time.Duration
	retryDelay     time.Duration
	maxFailures    int
	exitOnFailures bool
	logLevel       string
	logFormat      string
	metricsAddr    string
}

func defaultConfig() config {
	return config{
		engineSocket:  bridge.DefaultEngineSocket,
		serverSocket:  bridge.DefaultServerSocket,
		fetchInterval: bridge.DefaultFetchInterval,
		retryDelay:    bridge.DefaultRetryDelay,
		maxFailures:   bridge.DefaultMaxFailures,
		logLevel:      "info",
		metricsAddr:   "127.0.0.1:10259",
		logFormat:     "json",
	}
}

func (c *config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.engineSocket, "engine_socket", c.engineSocket,
		"the Seesaw Engine's socket")
	fs.StringVar(&c.serverSocket, "server_socket", c.serverSocket,
		"the healthcheck-server's JSON-lines socket")
	fs.DurationVar(&c.fetchInterval, "fetch_interval", c.fetchInterval,
		"how often configs are fetched from the Engine")
	fs.DurationVar(&c.retryDelay, "retry_delay", c.retryDelay,
		"delay between retries of a failed Engine call")
	fs.IntVar(&c.maxFailures, "max_failures", c.maxFailures,
		"consecutive failed Engine calls before the bridge alarms and backs off")
	fs.BoolVar(&c.exitOnFailures, "exit_on_max_failures", c.exitOnFailures,
		"exit (status 1) after -max_failures failed Engine calls, as Seesaw exits")
	fs.StringVar(&c.metricsAddr, "metrics_addr", c.metricsAddr,
		"HTTP listener for /metrics and /healthz; empty disables it")
	fs.StringVar(&c.logLevel, "log_level", c.logLevel, "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log_format", c.logFormat, "json or console")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("healthcheck-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger, err := actors.NewLogger(stderr, cfg.logFormat, cfg.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck-proxy: %v\n", err)
		return 2
	}
	if err := serve(cfg, logger); err != nil {
		logger.Error().Err(err).Msg("proxy_failed")
		return 1
	}
	return 0
}

// serve runs the bridge until SIGINT or SIGTERM, then stops it: the
// bridge first, so it can flush what it holds, then the link.
func serve(cfg config, logger zerolog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(),
		syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	sys := actors.NewSystem(logger)
	defer sys.Shutdown()
	tel := actors.NewActorTelemetry()
	defer tel.WatchDeadLetters(sys)()
	var fatal atomic.Pointer[error]
	stats := &bridge.EdgeStats{}
	ecfg := bridge.EdgeConfig{
		Stats:         stats,
		Engine:        bridge.NewEngineClient(cfg.engineSocket, 0),
		FetchInterval: cfg.fetchInterval,
		RetryDelay:    cfg.retryDelay,
		MaxFailures:   cfg.maxFailures,
		Logger:        logger,
	}
	if cfg.exitOnFailures {
		ecfg.OnMaxFailures = func(err error) {
			fatal.Store(&err)
			stop()
		}
	}
	split, err := bridge.StartSplit(sys,
		bridge.LinkConfig{Socket: cfg.serverSocket, Logger: logger}, ecfg,
		tel.Wrap)
	if err != nil {
		return err
	}
	logger.Info().Str("engine", cfg.engineSocket).
		Str("server", cfg.serverSocket).Msg("proxy_started")
	if cfg.metricsAddr != "" {
		srv, err := serveOperators(cfg.metricsAddr,
			operatorsHandler(stats, ecfg, tel), logger)
		if err != nil {
			split.Stop()
			return fmt.Errorf("-metrics_addr: %w", err)
		}
		defer srv.Close()
	}

	var died error
	select {
	case <-ctx.Done():
	case <-split.Died():
		died = errors.New("the bridge or the link stopped for good")
	}
	logger.Info().Msg("proxy_stopping")
	if err := split.Stop(); err != nil {
		logger.Warn().Err(err).Msg("proxy_stop_incomplete")
	}
	logger.Info().Msg("proxy_stopped")
	if err := fatal.Load(); err != nil {
		return *err
	}
	return died
}
