package main

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/messages"
)

const (
	// watchdogProbeMax bounds how long a watchdog probe waits for the
	// manager; a probe waits a quarter of the watchdog's timeout at most.
	watchdogProbeMax = 5 * time.Second
	// readyProbeTimeout bounds one wait for the manager's answer that
	// the first config set is applied; it is asked again until it is.
	readyProbeTimeout = time.Second
	// readyPollInterval is how often readiness is looked for.
	readyPollInterval = 100 * time.Millisecond
)

// sdConfig configures an sdNotifier.
type sdConfig struct {
	// notify sends one state to systemd, such as "READY=1".
	notify func(state string) error
	// ready returns once the first config set is applied, or with ctx's
	// error when the server stops first. Nil means ready at once.
	ready func(ctx context.Context) error
	// alive reports whether the actor system answers within timeout.
	alive func(timeout time.Duration) bool
	// watchdog is systemd's watchdog timeout (WATCHDOG_USEC); zero means
	// no watchdog.
	watchdog time.Duration
	logger   zerolog.Logger
}

// sdNotifier tells systemd how the server is doing, for Type=notify
// units: READY=1 once the first config set is applied, then WATCHDOG=1
// every half watchdog timeout while the actor system answers (a wedged
// manager stops the pings, and systemd restarts the server), and
// STOPPING=1 when the server stops. A nil *sdNotifier does nothing.
type sdNotifier struct {
	cfg    sdConfig
	log    zerolog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stop   sync.Once
}

// startSystemd starts telling systemd about svc, or returns nil when the
// server does not run under systemd (NOTIFY_SOCKET is not set). It must
// be called after startReloads has sent a -config file's checks.
func startSystemd(cfg config, svc *actors.Service, logger zerolog.Logger) *sdNotifier {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	watchdog, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		logger.Warn().Err(err).Msg("systemd_watchdog_unusable")
		watchdog = 0
	}
	return newSDNotifier(sdConfig{
		notify: func(state string) error {
			_, err := daemon.SdNotify(false, state)
			return err
		},
		ready:    readiness(cfg, svc),
		alive:    managerAnswers(svc),
		watchdog: watchdog,
		logger:   logger,
	})
}

// readiness returns how to tell that the server's first config set is
// applied: with -config, the manager answers a status request (sent
// after the file's checks, so it is handled after them); with the Engine
// bridge, the manager confirmed a set the bridge fetched; with neither,
// the configs come from socket clients whenever they connect, and the
// server is ready at once.
func readiness(cfg config, svc *actors.Service) func(context.Context) error {
	switch {
	case cfg.configFile != "":
		return func(ctx context.Context) error {
			return poll(ctx, func() bool {
				_, err := svc.System().Root.RequestFuture(svc.Manager(),
					&messages.RequestStatus{}, readyProbeTimeout).Result()
				return err == nil
			})
		}
	case cfg.bridgeStats != nil:
		stats := cfg.bridgeStats
		return func(ctx context.Context) error {
			return poll(ctx, func() bool { return stats.LastApplied.Load() != 0 })
		}
	}
	return nil
}

// poll returns once cond holds, checking it every readyPollInterval, or
// with ctx's error.
func poll(ctx context.Context, cond func() bool) error {
	ticker := time.NewTicker(readyPollInterval)
	defer ticker.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
	return nil
}

// managerAnswers returns a probe that the manager answers a Touch: the
// manager handles every config and status request, so when it cannot
// answer, the server is wedged.
func managerAnswers(svc *actors.Service) func(time.Duration) bool {
	return func(timeout time.Duration) bool {
		_, err := svc.System().Root.RequestFuture(svc.Manager(), &actor.Touch{},
			timeout).Result()
		return err == nil
	}
}

// newSDNotifier starts an sdNotifier.
func newSDNotifier(cfg sdConfig) *sdNotifier {
	ctx, cancel := context.WithCancel(context.Background())
	n := &sdNotifier{
		cfg:    cfg,
		log:    cfg.logger.With().Str("component", "systemd").Logger(),
		cancel: cancel,
	}
	n.wg.Go(func() { n.run(ctx) })
	return n
}

// run waits for readiness, says so, and then keeps the watchdog fed.
func (n *sdNotifier) run(ctx context.Context) {
	if n.cfg.ready != nil {
		if err := n.cfg.ready(ctx); err != nil {
			return
		}
	}
	n.send(daemon.SdNotifyReady)
	n.log.Info().Dur("watchdog", n.cfg.watchdog).Msg("systemd_ready")
	if n.cfg.watchdog > 0 {
		n.feedWatchdog(ctx)
	}
}

// feedWatchdog pings systemd's watchdog at once and then every half of its
// timeout, each time the actor system answers, until ctx ends.
func (n *sdNotifier) feedWatchdog(ctx context.Context) {
	timeout := min(n.cfg.watchdog/4, watchdogProbeMax)
	ticker := time.NewTicker(n.cfg.watchdog / 2)
	defer ticker.Stop()
	answering := true
	for {
		alive := n.cfg.alive(timeout)
		switch {
		case alive:
			n.send(daemon.SdNotifyWatchdog)
			if !answering {
				n.log.Info().Msg("watchdog_pings_resumed")
			}
		case answering:
			n.log.Error().Dur("probe_timeout", timeout).
				Msg("watchdog_pings_paused_manager_not_answering")
		}
		answering = alive

		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// stopping ends the readiness wait and the watchdog pings, then tells
// systemd that the server is stopping. Later calls do nothing.
func (n *sdNotifier) stopping() {
	if n == nil {
		return
	}
	n.stop.Do(func() {
		n.cancel()
		n.wg.Wait()
		n.send(daemon.SdNotifyStopping)
	})
}

func (n *sdNotifier) send(state string) {
	if err := n.cfg.notify(state); err != nil {
		n.log.Warn().Err(err).Str("state", state).Msg("systemd_notify_failed")
	}
}
