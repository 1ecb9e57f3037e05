package main

import (
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/messages"
)

// naiveCheck is one check of the naive design, shaped as Seesaw's
// healthcheck server is: a goroutine and a time.Ticker of its own, and
// its status under a lock. Its first probe comes at the same phase as
// the supervisor's, so both designs run the same schedule (Seesaw
// instead starts one check per 50 ms, which at 100,000 checks would take
// 83 minutes).
type naiveCheck struct {
	i      int
	id     uint64
	prober actors.Prober

	mu        sync.Mutex
	state     messages.State
	successes uint64
	failures  uint64
}

// naive runs the naive design.
type naive struct {
	s      *spec
	rec    *recorder
	checks []*naiveCheck
	// notify receives state changes, as Seesaw's server's notification
	// channel does; one goroutine drains it.
	notify chan messages.CheckStatus
}

func runNaive() error {
	s, err := readSpec()
	if err != nil {
		return err
	}
	probers, err := buildProbers(s)
	if err != nil {
		return err
	}
	n := &naive{
		s:      s,
		rec:    newRecorder(s),
		checks: make([]*naiveCheck, s.N),
		notify: make(chan messages.CheckStatus, 1000),
	}
	for i := range n.checks {
		n.checks[i] = &naiveCheck{i: i, id: checkID(i), prober: probers[i]}
	}
	return writeJSON(s.Result, n.run())
}

func (n *naive) run() designResult {
	s := n.s
	res := designResult{Planned: s.plannedRate(), Empty: snapshotMem()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for range n.notify {
		}
	})

	t0 := time.Now()
	n.rec.configured(t0)
	var checks sync.WaitGroup
	for _, c := range n.checks {
		checks.Go(func() { n.loop(ctx, c) })
	}
	res.AllRan, res.AllRanOK = n.rec.waitAllRan(t0.Add(2*s.Interval + 5*time.Second))
	res.RanOnce = n.rec.ranOnce.Load()
	res.Burst = n.rec.burst()
	// Let the first interval end, so the window sees the steady rate.
	time.Sleep(time.Until(t0.Add(s.Interval)))
	res.Loaded = snapshotMem()
	writeHeapProfile(s, "naive")
	progress("naive: every check ran once after %v; steady window of %v",
		res.AllRan.Round(time.Millisecond), s.Steady)

	res.Steady = steadyWindow(s, n.rec, "naive", selfSample)
	progress("naive: stopping")
	cancel()
	checks.Wait()
	close(n.notify)
	wg.Wait()
	return res
}

// selfSample reads this process's threads and goroutines.
func selfSample() (procStatus, int) {
	st, _ := readStatus(0)
	return st, runtime.NumGoroutine()
}

// steadyWindow measures one steady-state window of a design that runs in
// this process.
func steadyWindow(s *spec, rec *recorder, name string,
	read func() (procStatus, int)) steadyResult {
	stopProfile := startCPUProfile(s, name)
	sm := startSampler(read)
	rec.steady.Store(true)
	starts0, fails0 := rec.starts.Load(), rec.fails.Load()
	rt0 := readRuntime()
	meter, t0 := startCPU(s.BackendsPID), time.Now()

	time.Sleep(s.Steady)

	used, window := meter.stop(), time.Since(t0)
	rt := readRuntime().since(rt0)
	cpu := used.Self
	rec.steady.Store(false)
	res := sm.finish()
	stopProfile()
	res.Window, res.CPU = window, cpu
	res.Backends, res.MachineLoad = used.Backends, used.MachineLoad
	res.Runtime = rt
	res.Probes = rec.starts.Load() - starts0
	res.Failures = rec.fails.Load() - fails0
	res.PerSec = float64(res.Probes) / window.Seconds()
	if res.Probes > 0 {
		res.CPUPer1000 = cpu * 1000 / time.Duration(res.Probes)
	}
	res.Lag = rec.lag.summary()
	res.Top = rec.topFailures(5)
	res.TW, _ = scanTimeWait(s.listenerSet())
	return res
}

// loop is one check's goroutine: wait for the phase, then probe on every
// tick of the check's own ticker.
func (n *naive) loop(ctx context.Context, c *naiveCheck) {
	iv := n.s.Interval
	first := firstPlanned(c.id, iv, time.Now())
	wait := time.NewTimer(time.Until(first))
	select {
	case <-wait.C:
	case <-ctx.Done():
		wait.Stop()
		return
	}
	woke := time.Now()
	ticker := time.NewTicker(iv)
	defer ticker.Stop()
	n.probe(c, woke, woke.Sub(first))
	for {
		select {
		case <-ticker.C:
			now := time.Now()
			k := (now.Sub(woke) + iv/2) / iv
			n.probe(c, now, now.Sub(woke.Add(k*iv)))
		case <-ctx.Done():
			return
		}
	}
}

// probe runs one probe of c under the check's timeout and records it.
func (n *naive) probe(c *naiveCheck, now time.Time, lag time.Duration) {
	n.rec.started(c.i, now, lag)
	// NOTE: not derived from ctx: 100,000 children of one context would
	// all register with it, under its lock, which Seesaw's checks do not.
	pctx, cancel := context.WithTimeout(context.Background(), n.s.Timeout)
	res := c.prober.Probe(pctx)
	cancel()
	n.rec.finished(c.i, res, time.Now())

	c.mu.Lock()
	prev := c.state
	if res.Success {
		c.successes++
		c.state = messages.StateHealthy
	} else {
		c.failures++
		c.state = messages.StateUnhealthy
	}
	changed := c.state != prev
	st := messages.Status{State: c.state, Message: res.Message,
		Successes: c.successes, Failures: c.failures}
	c.mu.Unlock()
	if changed {
		n.notify <- messages.CheckStatus{ID: c.id, Status: st}
	}
}
