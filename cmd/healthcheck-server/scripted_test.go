package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
)

// scripted is a server started as main starts it, with an operators'
// listener, the Engine bridge against a simulated Engine and a socket
// client.
type scripted struct {
	svc    *actors.Service
	url    string
	sim    *enginesim.Server
	bridge *bridge.EdgeStats
	client net.Conn
	// upPort is the port of check 1's backend, which answers.
	upPort int
}

// scriptedRetry is the bridge's retry delay: long beside the few
// statements failOneHealthState needs to hold the retry back.
const scriptedRetry = 500 * time.Millisecond

// startScripted starts the server with the library's metrics, the
// socket proxy and the Engine bridge against a simulated Engine that
// serves no checks, waits for the bridge's one fetch (it fetches every
// hour), then connects a socket client.
func startScripted(t *testing.T) *scripted {
	t.Helper()
	// NOTE: warn, because the library logs throttled dead letters at
	// info from a goroutine of its own that may outlive the test.
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)

	tel := actors.NewTelemetry()
	libOpt, err := libraryMetrics(tel.Registry())
	if err != nil {
		t.Fatal(err)
	}
	// libraryMetrics set the global meter provider; later tests get none.
	t.Cleanup(func() { otel.SetMeterProvider(noop.NewMeterProvider()) })

	dir := shortTempDir(t)
	sim := startEngine(t, filepath.Join(dir, "engine"))
	stats, bridgeStats, edges := scriptedEdges(t, filepath.Join(dir, "s"),
		filepath.Join(dir, "engine"), logger)
	mcfg := actors.DefaultManagerConfig()
	mcfg.NotifierStats = stats.Notifier
	mcfg.FaultStats = stats.Faults
	// No periodic status: every notification is one the script made.
	mcfg.NotifyInterval = time.Hour
	mcfg.Logger = logger
	svc, err := actors.Start(actors.ServiceConfig{
		Manager:       mcfg,
		Edges:         edges,
		Logger:        logger,
		Telemetry:     tel,
		SystemOptions: []actor.ConfigOption{libOpt},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopService(t, svc) })
	httpSrv := httptest.NewServer(svc.OperatorHandler(stats))
	t.Cleanup(httpSrv.Close)

	s := &scripted{svc: svc, url: httpSrv.URL, sim: sim, bridge: bridgeStats}
	// The fetch, of no checks, must not undo the client's configs.
	waitUntil(t, "the bridge's first fetch", func() bool {
		return s.bridge.Fetches.Load() == 1
	})
	s.client = connectClient(t, filepath.Join(dir, "s"))
	return s
}

// shortTempDir returns a directory for unix sockets, whose paths must be
// short, removed when the test ends.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startEngine starts a simulated Engine on sock, closed when the test
// ends.
func startEngine(t *testing.T, sock string) *enginesim.Server {
	t.Helper()
	sim := enginesim.New(enginesim.Config{})
	if err := sim.Listen(sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// scriptedEdges returns the socket proxy on sock and the Engine bridge
// of the Engine on engine, with the stats for them, as main builds them
// from its flags, and the bridge's own.
func scriptedEdges(t *testing.T, sock, engine string,
	logger zerolog.Logger) (actors.OperatorStats, *bridge.EdgeStats, []actors.Edge) {
	t.Helper()
	cfg := defaultConfig()
	cfg.proxySocket, cfg.engine = sock, engine
	cfg.fetchInterval, cfg.retryDelay = time.Hour, scriptedRetry
	stats := operatorStats(&cfg)
	edges, err := buildEdges(cfg, logger, stats.Proxy, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return stats, cfg.bridgeStats, edges
}

// stopService stops svc within stopTimeout.
func stopService(t *testing.T, svc *actors.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := svc.Stop(ctx); err != nil {
		t.Error(err)
	}
}

// configLine is an update_configs line of loopback TCP checks by ID and
// port.
func configLine(checks ...[2]int) string {
	const cfg = `{"id":%d,"interval":"50ms","timeout":"1s",` +
		`"checker_type":"tcp","ip":"127.0.0.1","port":%d}`
	var list []string
	for _, c := range checks {
		list = append(list, fmt.Sprintf(cfg, c[0], c[1]))
	}
	return `{"type":"update_configs","configs":[` +
		strings.Join(list, ",") + "]}\n"
}

// configure has the socket client send a healthy check, an unhealthy
// one and an invalid config, then a malformed line, and sends a message
// to an actor that does not exist. The Engine answers the first
// HealthState call with an error; see failOneHealthState.
func (s *scripted) configure(t *testing.T) {
	t.Helper()
	s.sim.SetHang(true)
	s.sim.SetHealthStateError("injected: engine busy")

	up, refused := loopbackBackends(t)
	s.upPort = up
	s.send(t, configLine([2]int{1, up}, [2]int{2, refused}, [2]int{3, 0}))
	s.send(t, `{"type":"update_configs","configs":[`+"\n")
	sys := s.svc.System()
	// A dead letter, to a check that does not run.
	sys.Root.Send(actor.NewPID(sys.Address(), "hc/manager/999"),
		&messages.RequestStatus{})
}

// send writes a line as the socket client.
func (s *scripted) send(t *testing.T, line string) {
	t.Helper()
	s.client.SetWriteDeadline(time.Now().Add(cfWait))
	if _, err := io.WriteString(s.client, line); err != nil {
		t.Fatalf("writing %q: %v", line, err)
	}
}

// failOneHealthState makes the Engine fail exactly one HealthState call,
// the first, and answer the rest. The first call hangs until released
// with the error set; the bridge's retry, scriptedRetry later, finds
// the Engine hanging again, and is released once the error is cleared.
func (s *scripted) failOneHealthState(t *testing.T) {
	t.Helper()
	s.waitEngine(t, "the first HealthState call held", func(c *enginesim.Snapshot) bool {
		return c.Counts.Hung == 1
	})
	s.sim.SetHang(false)
	s.sim.SetHang(true)
	s.waitEngine(t, "the first call failed and the retry held", func(c *enginesim.Snapshot) bool {
		return c.Counts.Errors == 1 && c.Counts.Hung == 2
	})
	s.sim.SetHealthStateError("")
	s.sim.SetHang(false)
}

// waitEngine waits until the simulated Engine's state satisfies cond.
func (s *scripted) waitEngine(t *testing.T, what string,
	cond func(*enginesim.Snapshot) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cfWait)
	defer cancel()
	err := s.sim.WaitFor(ctx, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v; the Engine saw %+v", what, err,
			s.sim.Counts())
	}
}

// coalesce sends the notifier two statuses of one check in one batch,
// of which it must send only the newer.
func (s *scripted) coalesce(t *testing.T) {
	t.Helper()
	at := time.Now()
	older := messages.CheckStatus{ID: 99, Status: messages.Status{
		State: messages.StateHealthy, LastCheck: at, Message: "older",
	}}
	newer := older
	newer.Status.LastCheck, newer.Status.Message = at.Add(time.Millisecond), "newer"
	sys := s.svc.System()
	sys.Root.Send(actor.NewPID(sys.Address(), "hc/manager/notifier"),
		&messages.NotificationBatch{
			Notifications: []messages.CheckStatus{older, newer},
		})
	var got []string
	s.waitEngine(t, "the coalesced status", func(snap *enginesim.Snapshot) bool {
		got = got[:0]
		for _, r := range snap.Received {
			if r.Notification.Id == 99 {
				got = append(got, r.Notification.Status.Message)
			}
		}
		return len(got) > 0
	})
	if !slices.Equal(got, []string{"newer"}) {
		t.Errorf("the Engine got %q for check 99, want only the newer", got)
	}
}

// waitIdle waits until the bridge has told the Engine everything, the
// notifier holds nothing and every mailbox is empty.
func (s *scripted) waitIdle(t *testing.T) {
	t.Helper()
	waitUntil(t, "the run to settle", func() bool {
		fams := s.scrape(t)
		n := func(outcome string) float64 {
			return value(fams, "hc_notifications_total", "outcome", outcome)
		}
		seen := s.sim.Counts()
		return s.bridge.Pending.Load() == 0 &&
			s.bridge.HealthStates.Load() == seen.HealthState &&
			n("queued") == n("sent")+n("coalesced")+n("undelivered") &&
			value(fams, "hc_actor_mailbox_depth") == 0
	})
}

// removeCheck has the client send the configs without check 2 and
// checks that its actor stopped, counted once as a stop and not as a
// spawn.
func (s *scripted) removeCheck(t *testing.T) {
	t.Helper()
	s.send(t, configLine([2]int{1, s.upPort}))
	waitUntil(t, "the check's stop", func() bool {
		return value(s.scrape(t), "hc_actor_lifecycle_total",
			"event", "stop", "kind", "check") == 1
	})
	fams := s.scrape(t)
	for _, tt := range []struct {
		event string
		want  float64
	}{{"spawn", 2}, {"stop", 1}, {"restart", 1}} {
		got := value(fams, "hc_actor_lifecycle_total", "event", tt.event,
			"kind", "check")
		if got != tt.want {
			t.Errorf("hc_actor_lifecycle_total{event=%q,kind=\"check\"} = %v, "+
				"want %v", tt.event, got, tt.want)
		}
	}
	if got := value(fams, "hc_actors", "kind", "check"); got != 1 {
		t.Errorf("hc_actors{kind=\"check\"} = %v, want 1", got)
	}
}

// loopbackBackends returns the port of a TCP listener that accepts, and
// a port nothing listens on.
func loopbackBackends(t *testing.T) (up, refused int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})

	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone.Close()
	return ln.Addr().(*net.TCPAddr).Port, gone.Addr().(*net.TCPAddr).Port
}

// connectClient connects a socket client that stays until the test
// ends, and reads its ready line.
func connectClient(t *testing.T, sock string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("unix", sock, cfWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(cfWait))
	buf := make([]byte, len(`{"type":"ready"}`)+1)
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatalf("reading the ready line: %v", err)
	}
	return conn
}

// crashCheck injects one panic into check id.
func (s *scripted) crashCheck(t *testing.T, id uint64) {
	t.Helper()
	res, err := s.svc.System().Root.RequestFuture(s.svc.Manager(),
		&messages.InjectFault{ID: id, Fault: messages.FaultPanic, Count: 1},
		cfWait).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.(*messages.Ack); !ok {
		t.Fatalf("inject_fault answered %#v, want an ack", res)
	}
}

func (s *scripted) status(t *testing.T) *messages.StatusReport {
	t.Helper()
	var rep messages.StatusReport
	s.getJSON(t, "/status", &rep)
	return &rep
}

// treeRestarts returns the restarts /tree shows for an actor, or -1 when
// it is not in the tree.
func (s *scripted) treeRestarts(t *testing.T, id string) int64 {
	t.Helper()
	var rep messages.TreeReport
	s.getJSON(t, "/tree", &rep)
	for _, a := range rep.Actors {
		if a.ID == id {
			if a.Kind != "check" {
				t.Fatalf("/tree: %s is a %s, want a check", id, a.Kind)
			}
			return int64(a.Restarts)
		}
	}
	return -1
}

func (s *scripted) getJSON(t *testing.T, path string, into any) {
	t.Helper()
	res, err := http.Get(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200", path, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(into); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}
