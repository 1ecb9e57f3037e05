package actors

import (
	"sync"
	"testing"
	"time"
)

// A worker takes the next job that finds it idle; jobs that find no idle
// worker start one, so they never wait for each other.
func TestProbeWorkersReuseAndNeverQueue(t *testing.T) {
	w := newProbeWorkers(time.Minute)
	defer w.wait()
	defer w.stop()

	// Two jobs at once need two workers: the first holds its worker.
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(2)
	for range 2 {
		w.run(jobFunc(func() {
			started.Done()
			<-release
		}))
	}
	started.Wait() // would hang if the second job queued behind the first
	close(release)

	// Once they are idle, jobs run on the same goroutines: run hands a
	// job over only to a worker waiting in its receive.
	ran := make(chan struct{})
	deadline := time.Now().Add(5 * time.Second)
	for reused := false; !reused; {
		select {
		case w.jobs <- jobFunc(func() { close(ran) }):
			reused = true
		default:
			if time.Now().After(deadline) {
				t.Fatal("no worker idle 5s after its job ended")
			}
			time.Sleep(time.Millisecond)
		}
	}
	<-ran
}

// An idle worker exits after its idle time, and stop makes the others
// exit; a job run after stop still runs.
func TestProbeWorkersExit(t *testing.T) {
	w := newProbeWorkers(10 * time.Millisecond)
	done := make(chan struct{})
	w.run(jobFunc(func() { close(done) }))
	<-done
	w.wait() // returns once the idle worker has exited

	w = newProbeWorkers(time.Hour)
	w.run(jobFunc(func() {}))
	w.stop()
	w.wait()
	after := make(chan struct{})
	w.run(jobFunc(func() { close(after) }))
	<-after
	w.wait()
}

// jobFunc runs a func as a worker's job.
type jobFunc func()

func (f jobFunc) run() { f() }
