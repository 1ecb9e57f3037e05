package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// metricsAddr is where the server under test serves /metrics in process
// mode: an address of the run's own, inside 127.0.0.0/8.
const metricsAddr = "127.78.0.1:10258"

// server is bin/healthcheck-server running under the harness.
type server struct {
	*child
	client *http.Client
	url    string
}

// startServer starts the server against the simulated Engine and waits
// until it serves /metrics.
func (c *coord) startServer() (*server, error) {
	args := []string{
		"-engine", c.spec.Engine,
		"-proxy_socket", "",
		"-metrics_addr", metricsAddr,
		"-batch_delay", c.opts.batchDelay.String(),
		"-notify_interval", c.opts.notify.String(),
		"-log_level", "warn",
		fmt.Sprintf("-tcp_reset_close=%t", c.opts.resetClose),
	}
	cmd := exec.Command(c.opts.server, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	ch, err := startChild(cmd)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", c.opts.server, err)
	}
	srv := &server{
		child:  ch,
		client: &http.Client{Timeout: 10 * time.Second},
		url:    "http://" + metricsAddr + "/metrics",
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := srv.scrape(); err == nil {
			return srv, nil
		}
		if time.Now().After(deadline) {
			srv.stop()
			return nil, errors.New("the server never served /metrics")
		}
		if err := srv.pause(50 * time.Millisecond); err != nil {
			return nil, fmt.Errorf("before it served /metrics, %w", err)
		}
	}
}

func (srv *server) scrape() (*scrape, error) {
	return scrapeMetrics(srv.client, srv.url)
}

// child is a started process that a goroutine of its own reaps, so that
// a wait for it to be ready notices if it ends instead.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd is reaped
}

func startChild(cmd *exec.Cmd) (*child, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := &child{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(ch.exited)
	}()
	return ch, nil
}

// pause waits d, and returns an error naming how the process ended if it
// ends meanwhile.
func (ch *child) pause(d time.Duration) error {
	select {
	case <-ch.exited:
		return fmt.Errorf("%s exited: %v", ch.cmd.Path, ch.cmd.ProcessState)
	case <-time.After(d):
		return nil
	}
}

// stop stops the process with SIGTERM, as its supervisor would, and waits
// until it is reaped, killing it if it has not ended within 30 s.
func (ch *child) stop() {
	ch.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ch.exited:
	case <-time.After(30 * time.Second):
		ch.cmd.Process.Kill()
		<-ch.exited
	}
}

// memory reads the server's RSS and threads, and its Go heap and
// goroutines from /metrics.
func (srv *server) memory() memSnapshot {
	st, _ := readStatus(srv.cmd.Process.Pid)
	m := memSnapshot{RSS: st.RSS, Threads: st.Threads}
	if sc, err := srv.scrape(); err == nil {
		m.HeapInuse = int64(sc.values["go_memstats_heap_inuse_bytes"])
		m.Goroutines = int(sc.values["go_goroutines"])
	}
	return m
}

// runProcess measures the server as a process: it gets its checks from
// the simulated Engine, as in production.
func (c *coord) runProcess() (*designResult, error) {
	s := c.spec
	res := &designResult{Planned: s.plannedRate(),
		Server: &processDetails{Command: c.opts.server}}

	// The empty server, in a run of its own.
	srv, err := c.startServer()
	if err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second)
	res.Empty = srv.memory()
	srv.stop()

	if _, err := c.sim.SetChecks(s.engineChecks()); err != nil {
		return nil, fmt.Errorf("setting the Engine's checks: %w", err)
	}
	fetched := c.sim.Counts().Healthchecks
	if srv, err = c.startServer(); err != nil {
		return nil, err
	}
	defer srv.stop()
	res.Server.PID = srv.cmd.Process.Pid
	t0, err := c.waitFetch(fetched)
	if err != nil {
		return nil, err
	}
	if err := c.processStart(srv, res, t0); err != nil {
		return nil, err
	}
	res.Loaded = srv.memory()
	if err := c.processSteady(srv, res); err != nil {
		return nil, err
	}
	res.Latency = c.processLatency()
	return res, nil
}

// waitFetch waits for the server's first Healthchecks call and returns
// when it came.
func (c *coord) waitFetch(before uint64) (time.Time, error) {
	deadline := time.Now().Add(30 * time.Second)
	for c.sim.Counts().Healthchecks == before {
		if time.Now().After(deadline) {
			return time.Time{}, errors.New("the server never fetched its checks")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Now(), nil
}

// processStart follows the first interval from outside, in polls of
// /metrics every 100ms: when every check is configured (the apply, from
// the Engine's answer), the probes started per second, and when no check
// is left unknown.
func (c *coord) processStart(srv *server, res *designResult, t0 time.Time) error {
	s := c.spec
	deadline := t0.Add(2*s.Interval + 5*time.Second)
	var prev float64
	prevAt := t0
	res.Burst = -1 // until a whole second of the first interval is seen
	res.Apply = &applyResult{}
	for {
		time.Sleep(100 * time.Millisecond)
		sc, err := srv.scrape()
		if err != nil {
			return err
		}
		now := time.Now()
		probes := sc.sum("hc_probes_total")
		if now.Sub(prevAt) >= time.Second && now.Before(t0.Add(s.Interval)) {
			rate := (probes - prev) / now.Sub(prevAt).Seconds()
			res.Burst = max(res.Burst, rate/s.plannedRate())
			prev, prevAt = probes, now
		}
		unknown := sc.values[`hc_checks{state="unknown"}`]
		configured := sc.sum("hc_checks_configured")
		res.RanOnce = int64(configured - unknown)
		if res.Apply.Add == 0 && configured == float64(s.N) {
			res.Apply.Add = now.Sub(t0)
		}
		if configured == float64(s.N) && unknown == 0 {
			res.AllRan, res.AllRanOK = now.Sub(t0), true
			break
		}
		if now.After(deadline) {
			break
		}
	}
	time.Sleep(time.Until(t0.Add(s.Interval)))
	return nil
}

// processSteady measures the steady-state window from outside.
func (c *coord) processSteady(srv *server, res *designResult) error {
	s := c.spec
	pid := srv.cmd.Process.Pid
	before, err := srv.scrape()
	if err != nil {
		return err
	}
	sm := startSampler(func() (procStatus, int) {
		st, _ := readStatus(pid)
		g := 0
		if sc, err := srv.scrape(); err == nil {
			g = int(sc.values["go_goroutines"])
		}
		return st, g
	})
	cpu0, _ := procCPU(pid)
	meter, t0 := startCPU(s.BackendsPID), time.Now()
	time.Sleep(s.Steady)
	cpu1, _ := procCPU(pid)
	used, window := meter.stop(), time.Since(t0)
	st := sm.finish()
	after, err := srv.scrape()
	if err != nil {
		return err
	}

	st.Window, st.CPU = window, cpu1-cpu0
	st.Backends, st.MachineLoad = used.Backends, used.MachineLoad
	st.Probes = int64(after.sum("hc_probes_total") - before.sum("hc_probes_total"))
	st.PerSec = float64(st.Probes) / window.Seconds()
	if st.Probes > 0 {
		st.CPUPer1000 = st.CPU * 1000 / time.Duration(st.Probes)
	}
	st.Failures = int64(failures(after) - failures(before))
	st.TW, _ = scanTimeWait(s.listenerSet())
	res.Steady = st
	res.TelemetryLag = after.lag.sub(before.lag).summary()
	return nil
}

// failures sums the failed probes of a scrape.
func failures(sc *scrape) float64 {
	var t float64
	for k, v := range sc.values {
		if strings.HasPrefix(k, "hc_probes_total{") &&
			strings.Contains(k, `result="failure"`) {
			t += v
		}
	}
	return t
}

// processLatency fails the victims' backends and waits for the Engine to
// hear of them; only the failure's time is known from outside.
func (c *coord) processLatency() *latencyProbes {
	s := c.spec
	want := s.victimCount()
	if want == 0 {
		return nil
	}
	failAt := time.Now()
	if err := controlBackends(s.Control, "fail", victimListeners(&s)); err != nil {
		progress("%v", err)
		return nil
	}
	time.Sleep(s.Interval + s.Timeout + 2*s.BatchDelay + time.Second)
	return &latencyProbes{FailAt: failAt.UnixNano(), Want: want}
}
