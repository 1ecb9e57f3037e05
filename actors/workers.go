package actors

import (
	"sync"
	"time"
)

// workerIdle is how long a probe worker waits for its next probe before
// it exits.
const workerIdle = 10 * time.Second

// workersStopWait bounds how long a stopping manager waits for its probe
// workers to finish their cancelled probes.
const workersStopWait = time.Second

// probeWorkers runs probes on goroutines that outlive one probe. A probe
// goroutine grows its stack while it dials; a fresh goroutine per probe
// grows it every time, which cost 8% of the CPU at 10,000 probes a second
// (tests/load). A worker keeps its stack and takes the next probe that
// finds it idle; a probe finding none starts a worker, so probes never
// queue behind one another, and a worker idle for workerIdle (up to
// twice that) exits, so the workers follow the probes in flight.
//
// The manager owns the pool: stop makes idle workers exit at once and busy
// ones after their probe. run after stop still runs the probe, on a
// goroutine that ends with it.
type probeWorkers struct {
	idle  time.Duration
	jobs  chan workerJob // unbuffered: a send succeeds only to an idle worker
	quit  chan struct{}
	once  sync.Once
	alive sync.WaitGroup
}

func newProbeWorkers(idle time.Duration) *probeWorkers {
	return &probeWorkers{
		idle: idle,
		jobs: make(chan workerJob),
		quit: make(chan struct{}),
	}
}

// workerJob is what a worker runs: a planned probe. It is an interface
// rather than a func so that handing a probe over allocates nothing (a
// method value would, once a probe).
type workerJob interface{ run() }

// run runs job on an idle worker, or on a new one.
func (w *probeWorkers) run(job workerJob) {
	select {
	case w.jobs <- job:
	default:
		w.alive.Go(func() { w.work(job) })
	}
}

// work runs job, then the jobs handed to it, until the pool stops or a
// whole tick of its idle timer passes without a job: so a worker idle
// for between w.idle and twice that exits. The timer ticks once every
// w.idle rather than being reset for every job, which at 10,000 probes a
// second was a timer modification per probe.
func (w *probeWorkers) work(job workerJob) {
	idle := time.NewTimer(w.idle)
	defer idle.Stop()
	for ok := true; ok; job, ok = w.next(idle) {
		job.run()
		select {
		case <-w.quit:
			return
		default:
		}
	}
}

// next waits for the worker's next job, and reports false when the
// worker is to exit instead.
func (w *probeWorkers) next(idle *time.Timer) (workerJob, bool) {
	// worked says a job ran since the idle timer last ticked.
	for worked := true; ; {
		select {
		case job := <-w.jobs:
			return job, true
		case <-idle.C:
			if !worked {
				return nil, false
			}
			worked = false
			idle.Reset(w.idle)
		case <-w.quit:
			return nil, false
		}
	}
}

// stop makes every worker exit once idle. It does not wait: a probe that
// ignores its cancellation would hold the caller; see waitFor.
func (w *probeWorkers) stop() {
	w.once.Do(func() { close(w.quit) })
}

// wait waits until every worker has exited, for tests.
func (w *probeWorkers) wait() { w.alive.Wait() }

// waitFor waits until every worker has exited, at most d, and reports
// whether they have. When it gives up, its helper goroutine ends with the
// last worker.
func (w *probeWorkers) waitFor(d time.Duration) bool {
	exited := make(chan struct{})
	go func() {
		w.alive.Wait()
		close(exited)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-exited:
		return true
	case <-t.C:
		return false
	}
}
