// Command healthcheck-proxy is the Engine bridge as a process of its own:
// it fetches configs from the Seesaw Engine, hands them to a
// healthcheck-server over its JSON-lines socket, and reports the server's
// notifications back to the Engine.
//
// Exit status: 0 after a clean stop, 1 when -exit_on_max_failures ended
// it, 2 for bad flags.
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

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/bridge"
)

// stopTimeout bounds each step of a graceful stop.
const stopTimeout = 10 * time.Second

type config struct {
	engineSocket   string
	serverSocket   string
	fetchInterval  time.Duration
	retryDelay     time.Duration
	maxFailures    int
	exitOnFailures bool
	logLevel       string
	logFormat      string
}

func defaultConfig() config {
	return config{
		engineSocket:  bridge.DefaultEngineSocket,
		serverSocket:  bridge.DefaultServerSocket,
		fetchInterval: bridge.DefaultFetchInterval,
		retryDelay:    bridge.DefaultRetryDelay,
		maxFailures:   bridge.DefaultMaxFailures,
		logLevel:      "info",
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
		"exit with status 1 after -max_failures failed Engine calls, as Seesaw does")
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
	linkPID, edgePID, fatal := spawn(sys, cfg, logger, stop)
	if linkPID == nil || edgePID == nil {
		return errors.New("cannot spawn the bridge's actors")
	}
	logger.Info().Str("engine", cfg.engineSocket).
		Str("server", cfg.serverSocket).Msg("proxy_started")

	<-ctx.Done()
	logger.Info().Msg("proxy_stopping")
	if err := sys.Root.PoisonFuture(edgePID).Wait(); err != nil {
		logger.Warn().Err(err).Msg("bridge_stop_failed")
	}
	if err := sys.Root.PoisonFuture(linkPID).Wait(); err != nil {
		logger.Warn().Err(err).Msg("link_stop_failed")
	}
	logger.Info().Msg("proxy_stopped")
	if err := fatal.Load(); err != nil {
		return *err
	}
	return nil
}

// spawn starts the link and the bridge, each addressing the other by its
// name.
func spawn(sys *actor.ActorSystem, cfg config, logger zerolog.Logger,
	stop func()) (linkPID, edgePID *actor.PID, fatal *atomic.Pointer[error]) {
	fatal = &atomic.Pointer[error]{}
	edgeAddr := actor.NewPID(sys.Address(), "bridge")
	linkPID, err := sys.Root.SpawnNamed(bridge.NewLink(bridge.LinkConfig{
		Socket: cfg.serverSocket,
		Sink:   edgeAddr,
		Logger: logger,
	}), "link")
	if err != nil {
		return nil, nil, fatal
	}
	ecfg := bridge.EdgeConfig{
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
	edgePID, err = sys.Root.SpawnNamed(bridge.NewEdge(ecfg)(linkPID), "bridge")
	if err != nil {
		return linkPID, nil, fatal
	}
	return linkPID, edgePID, fatal
}
