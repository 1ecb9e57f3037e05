package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
)

// The split deployment's part in a run: for a second latency phase, the
// supervisor's child starts bin/healthcheck-proxy, the Engine bridge as a
// process of its own, on the supervisor's JSON-lines socket and a second
// simulated Engine of the coordinator's that serves the same checks; the
// failed probes then reach that Engine through the socket and the proxy.
// The proxy runs in no other phase, so it costs the supervisor's other
// figures nothing; the in-process bridge runs on in the split phase,
// which a split deployment would not have, so the phase carries the
// load of both.

// splitReadyTimeout bounds the wait for the proxy to connect and send its
// configs. Then, before the backends fail, the proxy is given time to
// settle: to fetch its Engine's checks and send them to the server, and
// to pass every check's status on to its Engine, which at 100,000 checks
// keeps it busy for seconds (a latency phase begun 5s after it connected
// measured that work, not the pipeline: p99 134ms against 105ms). It has
// settled once its Engine has every status it holds and it uses under
// splitIdleShare of a core for a splitIdleWindow, at most
// splitSettleTimeout after it connected. At the phase's end the proxy
// is stopped only once its Engine has every status it holds, or after
// splitDrainTimeout.
const (
	splitReadyTimeout  = 30 * time.Second
	splitSettleTimeout = time.Minute
	splitIdleWindow    = time.Second
	splitIdleShare     = 0.2
	splitDrainTimeout  = 30 * time.Second
)

// splitMetricsAddr is where the split proxy serves /metrics: an address
// of the run's own, inside 127.0.0.0/8.
const splitMetricsAddr = "127.78.0.2:10259"

// splitProxy is bin/healthcheck-proxy running under the supervisor's
// child.
type splitProxy struct {
	*child
	client *http.Client
}

// startSplitProxy starts the proxy and waits until the manager has its
// configs from it and has answered its request for every status, which
// the proxy then passes to its Engine: after that, a state change takes
// the same path as in production.
func startSplitProxy(s *spec, tel *actors.Telemetry,
	stats *actors.ProxyStats) (*splitProxy, error) {
	reg := tel.Registry()
	updates := managerMessages(reg, "messages.UpdateConfigs")
	statuses := managerMessages(reg, "messages.RequestStatus")
	cmd := exec.Command(s.Proxy,
		"-engine_socket", s.SplitEngine,
		"-server_socket", s.ProxySocket,
		"-fetch_interval", "1h",
		"-metrics_addr", splitMetricsAddr,
		"-log_level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// The proxy is killed when the thread that started it ends (Go issue
	// 27505). The runtime ends a thread only when a goroutine locked to
	// it exits, which this process does not do, so that is when this
	// process ends, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	ch, err := startChild(cmd)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", s.Proxy, err)
	}
	sp := &splitProxy{child: ch, client: &http.Client{Timeout: 5 * time.Second}}
	deadline := time.Now().Add(splitReadyTimeout)
	for {
		missing := ""
		switch {
		case stats.Clients.Load() == 0:
			missing = "connected"
		case managerMessages(reg, "messages.UpdateConfigs") == updates:
			missing = "sent its configs"
		case managerMessages(reg, "messages.RequestStatus") == statuses:
			missing = "asked for every status"
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			sp.stop()
			return nil, fmt.Errorf("the split proxy had not %s after %v",
				missing, splitReadyTimeout)
		}
		if err := sp.pause(20 * time.Millisecond); err != nil {
			return nil, fmt.Errorf("before the split proxy had %s, %w", missing, err)
		}
	}
	if !sp.settle(time.Now().Add(splitSettleTimeout)) {
		progress("supervisor: the split proxy kept busy for %v; measuring anyway",
			splitSettleTimeout)
	}
	return sp, nil
}

// settle waits until the proxy has settled, or deadline, and reports
// whether it has.
func (sp *splitProxy) settle(deadline time.Time) bool {
	pid := sp.cmd.Process.Pid
	last, err := procCPU(pid)
	for err == nil && time.Now().Before(deadline) {
		time.Sleep(splitIdleWindow)
		var now time.Duration
		if now, err = procCPU(pid); err != nil {
			break
		}
		idle := float64(now-last) < splitIdleShare*float64(splitIdleWindow)
		if idle && sp.pending() == 0 {
			return true
		}
		last = now
	}
	return false
}

// pending returns how many statuses the proxy holds that its Engine has
// not confirmed, or -1 when its /metrics does not answer.
func (sp *splitProxy) pending() float64 {
	sc, err := scrapeMetrics(sp.client, "http://"+splitMetricsAddr+"/metrics")
	if err != nil {
		return -1
	}
	v, ok := sc.values["hc_engine_pending_statuses"]
	if !ok {
		return -1
	}
	return v
}

// drain waits until the proxy's Engine has every status the proxy holds,
// or deadline, so that no notification is cut off by the proxy's stop.
func (sp *splitProxy) drain(deadline time.Time) {
	for sp.pending() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

// managerMessages returns how many messages of type msg the manager has
// received, or -1 when g cannot be gathered.
func managerMessages(g prometheus.Gatherer, msg string) float64 {
	m, err := findMetric(g, "hc_actor_messages_total",
		map[string]string{"kind": "manager", "message": msg})
	if err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// splitEngine is the coordinator's second simulated Engine, for the
// split deployment: it serves the run's checks and records when it hears
// of each unhealthy check.
type splitEngine struct {
	sim      *enginesim.Server
	receipts *receipts
}

func startSplitEngine(s *spec) (*splitEngine, error) {
	se := &splitEngine{receipts: newReceipts()}
	se.sim = enginesim.New(enginesim.Config{
		IDBase:   1 << 48,
		History:  -1,
		OnNotify: se.receipts.onNotify,
		Logger:   zerolog.Nop(),
	})
	if _, err := se.sim.SetChecks(s.engineChecks()); err != nil {
		return nil, fmt.Errorf("setting the split Engine's checks: %w", err)
	}
	if err := se.sim.Listen(s.SplitEngine); err != nil {
		return nil, fmt.Errorf("the split Engine listening on %s: %w", s.SplitEngine, err)
	}
	return se, nil
}

// receipts holds when an Engine received each unhealthy notification, by
// check ID, in Unix nanoseconds. It is safe for concurrent use.
type receipts struct {
	mu        sync.Mutex
	unhealthy map[uint64][]int64
}

func newReceipts() *receipts {
	return &receipts{unhealthy: make(map[uint64][]int64)}
}

func (r *receipts) onNotify(n bridge.Notification) {
	if n.Status.State != int(messages.StateUnhealthy) {
		return
	}
	now := time.Now().UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	if at := r.unhealthy[n.Id]; len(at) < maxReceipts {
		r.unhealthy[n.Id] = append(at, now)
	}
}

// first returns when the Engine first heard that check id was unhealthy
// at or after t and before end, in Unix nanoseconds, or 0.
func (r *receipts) first(id uint64, t, end int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, at := range r.unhealthy[id] {
		if at >= t && at < end {
			return at
		}
	}
	return 0
}
