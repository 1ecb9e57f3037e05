package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lbhealth/hcsupervisor/actors"
)

// floorResult is what the floor role measured: the same probes with no
// supervisor, once at the rate the schedule plans and once as fast as a
// bounded pool of workers can run them.
type floorResult struct {
	Paced, Tight floorRun
}

// floorRun is one window of the floor.
type floorRun struct {
	Window     time.Duration
	Probes     int64
	PerSec     float64
	CPU        time.Duration
	CPUPer1000 time.Duration
	// Backends is the backends' CPU in the window.
	Backends time.Duration
	MachineLoad
	Failures int64
	Top      []failure
	Threads  int
	TimeWait int
	// Dropped counts paced probes no worker was free to start.
	Dropped int64
	// Lag is how late paced probes started against their plan.
	Lag quantiles
	// Runtime is what the Go runtime saw in the window.
	Runtime runtimeStats
}

func runFloor() error {
	s, err := readSpec()
	if err != nil {
		return err
	}
	probers, err := buildProbers(s)
	if err != nil {
		return err
	}
	var res floorResult
	res.Paced = floorWindow(s, probers, s.plannedRate())
	res.Tight = floorWindow(s, probers, 0)
	return writeJSON(s.Result, res)
}

// buildProbers builds every check's prober, as the supervisor does.
func buildProbers(s *spec) ([]actors.Prober, error) {
	out := make([]actors.Prober, s.N)
	for i := range out {
		cfg := s.config(i, 0)
		p, err := s.Probe.New(&cfg)
		if err != nil {
			return nil, fmt.Errorf("prober %d: %w", i, err)
		}
		out[i] = p
	}
	return out, nil
}

// floorWindow runs the probes round-robin for one window: at rate per
// second, or back to back when rate is 0.
func floorWindow(s *spec, probers []actors.Prober, rate float64) floorRun {
	name := "floor-tight"
	if rate > 0 {
		name = "floor-paced"
	}
	stopProfile := startCPUProfile(s, name)
	var (
		next, probes, fails atomic.Int64
		lag                 hist
		mu                  sync.Mutex
		msgs                = make(map[string]int64)
	)
	work := func(planned int64) {
		if planned != 0 {
			lag.add(time.Duration(time.Now().UnixNano() - planned))
		}
		i := int(next.Add(1)-1) % len(probers)
		r := probers[i].Probe(context.Background())
		probes.Add(1)
		if !r.Success {
			fails.Add(1)
			mu.Lock()
			msgs[r.Message]++
			mu.Unlock()
		}
	}

	rt0 := readRuntime()
	meter, t0 := startCPU(s.BackendsPID), time.Now()
	var dropped int64
	if rate > 0 {
		dropped = paced(s, rate, work)
	} else {
		tight(s, work)
	}
	window, used := time.Since(t0), meter.stop()
	run := floorRun{
		Window:      window,
		CPU:         used.Self,
		Backends:    used.Backends,
		MachineLoad: used.MachineLoad,
		Probes:      probes.Load(),
		Failures:    fails.Load(),
		Dropped:     dropped,
		TimeWait:    timeWait(),
		Lag:         lag.summary(),
		Runtime:     readRuntime().since(rt0),
	}
	stopProfile()
	st, _ := readStatus(0)
	run.Threads = st.Threads
	run.PerSec = float64(run.Probes) / run.Window.Seconds()
	if run.Probes > 0 {
		run.CPUPer1000 = run.CPU * 1000 / time.Duration(run.Probes)
	}
	for m, n := range msgs {
		run.Top = append(run.Top, failure{Message: m, Count: n})
	}
	return run
}

// tight runs work back to back on FloorWorkers goroutines for the
// floor's window.
func tight(s *spec, work func(planned int64)) {
	deadline := time.Now().Add(s.FloorWindow)
	var wg sync.WaitGroup
	for range s.FloorWorkers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				work(0)
			}
		})
	}
	wg.Wait()
}

// paced starts work rate times a second, spread in millisecond steps,
// on a pool of FloorWorkers goroutines; each start is planned at its
// even share of the second. It returns how many starts found no worker
// free.
func paced(s *spec, rate float64, work func(planned int64)) int64 {
	jobs := make(chan int64, s.FloorWorkers)
	var wg sync.WaitGroup
	for range s.FloorWorkers {
		wg.Go(func() {
			for planned := range jobs {
				work(planned)
			}
		})
	}
	var dropped int64
	t0 := time.Now()
	tick := time.NewTicker(time.Millisecond)
	sent := 0
	for now := range tick.C {
		el := now.Sub(t0)
		if el >= s.FloorWindow {
			break
		}
		due := int(rate * el.Seconds())
		for ; sent < due; sent++ {
			planned := t0.Add(time.Duration(float64(sent) / rate * float64(time.Second)))
			select {
			case jobs <- planned.UnixNano():
			default:
				dropped++
			}
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	return dropped
}

// startCPUProfile profiles the CPU into <Profile>/cpu-<name>.pprof until
// the returned function is called, if the spec asks for profiles.
func startCPUProfile(s *spec, name string) func() {
	if s.Profile == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(s.Profile, "cpu-"+name+".pprof"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "hcload: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// writeHeapProfile writes <Profile>/heap-<name>.pprof, if the spec asks
// for profiles.
func writeHeapProfile(s *spec, name string) {
	if s.Profile == "" {
		return
	}
	f, err := os.Create(filepath.Join(s.Profile, "heap-"+name+".pprof"))
	if err != nil {
		return
	}
	defer f.Close()
	pprof.Lookup("heap").WriteTo(f, 0)
}
