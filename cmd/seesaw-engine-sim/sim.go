package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
)

// debounce is how long the checks file must stay quiet before it is
// reloaded: editors write a file in several steps.
const debounce = 250 * time.Millisecond

// socketDirMode is the mode of the socket's directory when serve creates
// it: the Engine's run directory's.
const socketDirMode = 0o770

// sim is the simulator: a Server serving the checks of a file.
type sim struct {
	srv  *enginesim.Server
	path string // of the checks file, absolute
	log  zerolog.Logger
	out  *printer
}

// serve loads the checks file, serves it on the socket and reloads it
// until ctx ends, then closes the Server.
func serve(ctx context.Context, o options, hup <-chan os.Signal, stdout io.Writer,
	logger zerolog.Logger) error {

	s, err := newSim(o, stdout, logger)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.socket), socketDirMode); err != nil {
		return fmt.Errorf("creating the socket's directory: %w", err)
	}
	if err := s.srv.Listen(o.socket); err != nil {
		return err
	}

	werr := s.watch(ctx, hup)
	cerr := s.srv.Close()
	s.logCounts()
	return errors.Join(werr, cerr)
}

// newSim returns a simulator serving the checks of o's file, not yet
// listening.
func newSim(o options, stdout io.Writer, logger zerolog.Logger) (*sim, error) {
	path, err := filepath.Abs(o.config)
	if err != nil {
		return nil, fmt.Errorf("-config: %w", err)
	}
	checks, err := enginesim.LoadFile(path)
	if err != nil {
		return nil, err
	}

	s := &sim{path: path, log: logger, out: newPrinter(stdout, o.quiet)}
	cfg := enginesim.DefaultConfig()
	cfg.OnNotify = s.notified
	cfg.Logger = logger
	s.srv = enginesim.New(cfg)
	if err := s.apply(checks, "start"); err != nil {
		return nil, err
	}
	return s, nil
}

// notified prints n.
func (s *sim) notified(n bridge.Notification) {
	s.out.print(n, s.srv.Config(n.Id) != nil)
}

// reload loads the checks file and serves it, or, when it is invalid,
// logs why and keeps the checks served.
func (s *sim) reload(reason string) error {
	checks, err := enginesim.LoadFile(s.path)
	if err == nil {
		err = s.apply(checks, reason)
	}
	if err != nil {
		s.log.Error().Str("error", oneLine(err)).Str("reason", reason).
			Int("serving", len(s.srv.Configs())).Msg("reload_failed_keeping_checks")
	}
	return err
}

// apply serves checks and logs what changed.
func (s *sim) apply(checks []enginesim.Check, reason string) error {
	u, err := s.srv.SetChecks(checks)
	if err != nil {
		return err
	}
	s.log.Info().Str("reason", reason).Str("file", s.path).
		Int("serving", len(s.srv.Configs())).Int("added", u.Added).
		Int("removed", u.Removed).Int("changed", u.Changed).
		Int("unchanged", u.Unchanged).Msg("checks_loaded")
	return nil
}

// watch reloads the checks file on SIGHUP and, debounced, when it
// changes, until ctx ends. It watches the file's directory, so that a
// file that an editor replaces is still seen. Without a watch, only
// SIGHUP reloads.
func (s *sim) watch(ctx context.Context, hup <-chan os.Signal) error {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w := s.newWatcher(); w != nil {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			s.reload("sighup")
		case ev, ok := <-events:
			if !ok {
				events = nil
			} else if s.concerns(ev) {
				timer.Reset(debounce)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
			} else {
				s.log.Warn().Err(err).Msg("file_watch_error")
			}
		case <-timer.C:
			s.reload("file_changed")
		}
	}
}

// newWatcher returns a watcher of the checks file's directory, or nil,
// logged, when there can be none.
func (s *sim) newWatcher() *fsnotify.Watcher {
	w, err := fsnotify.NewWatcher()
	if err == nil {
		err = w.Add(filepath.Dir(s.path))
		if err != nil {
			w.Close()
		}
	}
	if err != nil {
		s.log.Warn().Err(err).Str("file", s.path).Msg("file_watch_unavailable_use_sighup")
		return nil
	}
	return w
}

// concerns reports whether ev may have changed the checks file. A change
// of mode alone does not.
func (s *sim) concerns(ev fsnotify.Event) bool {
	return filepath.Clean(ev.Name) == s.path && ev.Op != fsnotify.Chmod
}

// logCounts logs what the Server has seen.
func (s *sim) logCounts() {
	c := s.srv.Counts()
	s.log.Info().Uint64("connections", c.Connections).
		Uint64("healthchecks_calls", c.Healthchecks).
		Uint64("healthstate_calls", c.HealthState).
		Uint64("notifications", c.Notifications).
		Uint64("unknown_ids", c.UnknownIDs).
		Uint64("errors", c.Errors).
		Uint64("hung", c.Hung).
		Uint64("updates", c.Updates).
		Msg("simulator_stopped")
}

// oneLine returns err's text on one line: joined errors take several.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
