package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/messages"
)

// fakeSystemd is systemd's end of NOTIFY_SOCKET.
type fakeSystemd struct {
	conn *net.UnixConn
}

// newFakeSystemd listens on a unixgram socket in a short temp dir (a
// socket path has at most 107 bytes) and points NOTIFY_SOCKET at it.
func newFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	path := filepath.Join(shortTempDir(t), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return &fakeSystemd{conn: conn}
}

// next returns the next state sent, failing after cfWait.
func (s *fakeSystemd) next(t *testing.T) string {
	t.Helper()
	state, err := s.read(cfWait)
	if err != nil {
		t.Fatalf("no state from the server: %v", err)
	}
	return state
}

// drain returns the states sent and not read yet. Sending is synchronous,
// so what was sent is already waiting.
func (s *fakeSystemd) drain(t *testing.T) []string {
	t.Helper()
	var states []string
	for {
		state, err := s.read(20 * time.Millisecond)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return states
		}
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, state)
	}
}

func (s *fakeSystemd) read(wait time.Duration) (string, error) {
	buf := make([]byte, 4096)
	s.conn.SetReadDeadline(time.Now().Add(wait))
	n, err := s.conn.Read(buf)
	return string(buf[:n]), err
}

// sdNotify sends to NOTIFY_SOCKET, as startSystemd's notifier does.
func sdNotify(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}

// waitUntil polls cond until it holds, failing the test after cfWait.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(cfWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestSDNotifierOrderAndWedgedManager(t *testing.T) {
	sd := newFakeSystemd(t)
	entered := make(chan struct{})
	gate := make(chan struct{})
	var alive atomic.Bool
	alive.Store(true)
	var probes atomic.Int64
	n := newSDNotifier(sdConfig{
		notify: sdNotify,
		ready: func(ctx context.Context) error {
			close(entered)
			select {
			case <-gate:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		alive: func(time.Duration) bool {
			probes.Add(1)
			return alive.Load()
		},
		watchdog: 40 * time.Millisecond,
		logger:   newLogLines(t).logger(),
	})
	t.Cleanup(n.stopping)

	// Nothing before the first config set is applied.
	<-entered
	if got := sd.drain(t); len(got) != 0 {
		t.Fatalf("states before ready = %q, want none", got)
	}
	close(gate)
	for i, want := range []string{"READY=1", "WATCHDOG=1", "WATCHDOG=1"} {
		if got := sd.next(t); got != want {
			t.Fatalf("state %d = %q, want %q", i, got, want)
		}
	}

	// A manager that stops answering stops the pings: once two probes
	// have failed, every ping of an earlier probe has been sent.
	alive.Store(false)
	p := probes.Load()
	waitUntil(t, "two failed probes", func() bool { return probes.Load() >= p+2 })
	sd.drain(t)
	p = probes.Load()
	waitUntil(t, "two more failed probes", func() bool { return probes.Load() >= p+2 })
	if got := sd.drain(t); len(got) != 0 {
		t.Fatalf("states while the manager does not answer = %q, want none", got)
	}

	// They resume when it answers again, and STOPPING comes last.
	alive.Store(true)
	if got := sd.next(t); got != "WATCHDOG=1" {
		t.Fatalf("state after the manager answers again = %q, want WATCHDOG=1", got)
	}
	n.stopping()
	got := sd.drain(t)
	if len(got) == 0 || got[len(got)-1] != "STOPPING=1" {
		t.Fatalf("states at the end = %q, want STOPPING=1 last", got)
	}
	for _, s := range got[:len(got)-1] {
		if s != "WATCHDOG=1" {
			t.Errorf("state before STOPPING = %q, want WATCHDOG=1", s)
		}
	}
	n.stopping()
	if got := sd.drain(t); len(got) != 0 {
		t.Errorf("states after a second stopping = %q, want none", got)
	}
}

func TestSDNotifierStoppingBeforeReady(t *testing.T) {
	sd := newFakeSystemd(t)
	n := newSDNotifier(sdConfig{
		notify: sdNotify,
		ready: func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		},
		alive:    func(time.Duration) bool { return true },
		watchdog: time.Millisecond,
		logger:   newLogLines(t).logger(),
	})
	n.stopping()
	if got := sd.drain(t); len(got) != 1 || got[0] != "STOPPING=1" {
		t.Errorf("states = %q, want only STOPPING=1", got)
	}
}

func TestStartSystemdOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := startSystemd(defaultConfig(), nil, newLogLines(t).logger())
	if n != nil {
		t.Fatalf("notifier = %v, want none without NOTIFY_SOCKET", n)
	}
	n.stopping() // A nil notifier does nothing.
}

// startTestService starts a service without edges.
func startTestService(t *testing.T) *actors.Service {
	t.Helper()
	return startServiceLogging(t, newLogLines(t).logger())
}

// startServiceLogging starts a service without edges that logs to
// logger.
func startServiceLogging(t *testing.T, logger zerolog.Logger) *actors.Service {
	t.Helper()
	mcfg := actors.DefaultManagerConfig()
	mcfg.Logger = logger
	svc, err := actors.Start(actors.ServiceConfig{Manager: mcfg, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopService(t, svc) })
	return svc
}

func TestManagerAnswers(t *testing.T) {
	svc := startTestService(t)
	alive := managerAnswers(svc)
	if !alive(cfWait) {
		t.Fatal("a running manager does not answer")
	}
	stopService(t, svc)
	if alive(100 * time.Millisecond) {
		t.Error("a stopped manager answers")
	}
}

func TestReadiness(t *testing.T) {
	t.Run("neither", func(t *testing.T) {
		if r := readiness(defaultConfig(), nil); r != nil {
			t.Error("readiness without -config or the bridge waits, want ready at once")
		}
	})
	t.Run("config file", func(t *testing.T) {
		cfg := defaultConfig()
		cfg.configFile = "checks.yaml"
		ready := readiness(cfg, startTestService(t))
		if err := ready(context.Background()); err != nil {
			t.Error(err)
		}
	})
	t.Run("engine bridge", func(t *testing.T) {
		cfg := defaultConfig()
		cfg.bridgeStats = &bridge.EdgeStats{}
		ready := readiness(cfg, nil)

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := ready(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("before the first fetch: %v, want context.Canceled", err)
		}
		cfg.bridgeStats.LastFetch.Store(time.Now().UnixNano())
		if err := ready(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("before the manager took the set: %v, want context.Canceled", err)
		}
		cfg.bridgeStats.LastApplied.Store(time.Now().UnixNano())
		if err := ready(context.Background()); err != nil {
			t.Errorf("after the manager took the set: %v", err)
		}
	})
}

// wedge is a log writer that can wedge the manager: once armed, the
// manager's next configs_applied line blocks it inside Receive, as a
// manager stuck in a handler would be, until released.
type wedge struct {
	next    *logLines
	armed   atomic.Bool
	entered chan struct{}
	gate    chan struct{}
	release func()
}

func newWedge(next *logLines) *wedge {
	w := &wedge{
		next:    next,
		entered: make(chan struct{}),
		gate:    make(chan struct{}),
	}
	w.release = sync.OnceFunc(func() { close(w.gate) })
	return w
}

func (w *wedge) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(`"configs_applied"`)) &&
		w.armed.CompareAndSwap(true, false) {
		close(w.entered)
		<-w.gate
	}
	return w.next.Write(p)
}

// TestWatchdogWedgedManager wedges a real manager: the probe that feeds
// the watchdog finds it not answering, the pings stop and the pause is
// logged; once the manager is free again, the pings resume.
func TestWatchdogWedgedManager(t *testing.T) {
	sd := newFakeSystemd(t)
	logs := newLogLines(t)
	w := newWedge(logs)
	svc := startServiceLogging(t, zerolog.New(w).Level(zerolog.DebugLevel))
	t.Cleanup(w.release) // Runs before the service's stop.

	answers := managerAnswers(svc)
	probes := make(chan bool, 1000)
	n := newSDNotifier(sdConfig{
		notify: sdNotify,
		alive: func(timeout time.Duration) bool {
			ok := answers(timeout)
			select {
			case probes <- ok:
			default:
			}
			return ok
		},
		// Probes wait 500ms: a free manager answers far sooner even on
		// a loaded machine.
		watchdog: 2 * time.Second,
		logger:   zerolog.New(logs),
	})
	t.Cleanup(n.stopping)
	for i, want := range []string{"READY=1", "WATCHDOG=1"} {
		if got := sd.next(t); got != want {
			t.Fatalf("state %d = %q, want %q", i, got, want)
		}
	}

	w.armed.Store(true)
	svc.System().Root.Send(svc.Manager(), &messages.UpdateConfigs{})
	select {
	case <-w.entered:
	case <-time.After(cfWait):
		t.Fatal("the manager never took the update")
	}
	if answers(100 * time.Millisecond) {
		t.Fatal("a wedged manager answers")
	}

	// Once a probe has failed, every earlier probe's ping has been sent;
	// after one more, none may have followed.
	waitProbe(t, probes, false)
	sd.drain(t)
	waitProbe(t, probes, false)
	if got := sd.drain(t); len(got) != 0 {
		t.Fatalf("states while the manager is wedged = %q, want none", got)
	}
	logs.waitCount(t, 1, "watchdog_pings_paused_manager_not_answering", nil)

	w.release()
	if got := sd.next(t); got != "WATCHDOG=1" {
		t.Fatalf("state after the manager is free = %q, want WATCHDOG=1", got)
	}
	logs.waitCount(t, 1, "watchdog_pings_resumed", nil)
}

// waitProbe waits for a watchdog probe with the result want, skipping
// others.
func waitProbe(t *testing.T, probes <-chan bool, want bool) {
	t.Helper()
	deadline := time.After(cfWait)
	for {
		select {
		case got := <-probes:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("no watchdog probe answered %v within %v", want, cfWait)
		}
	}
}
