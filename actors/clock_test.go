package actors

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// testJob reports to fired when the clock runs it.
type testJob struct {
	n     int
	fired chan<- firedJob
}

type firedJob struct {
	n  int
	at time.Time
}

func (j *testJob) fire() { j.fired <- firedJob{n: j.n, at: time.Now()} }

// jobLog collects the jobs a clock runs.
type jobLog chan firedJob

func newJobLog() jobLog { return make(chan firedJob, 100) }

func (l jobLog) job(n int) *testJob { return &testJob{n: n, fired: l} }

// next returns the next job run, failing the test after wait.
func (l jobLog) next(t *testing.T, wait time.Duration) firedJob {
	t.Helper()
	select {
	case f := <-l:
		return f
	case <-time.After(wait):
		t.Fatalf("no job ran within %v", wait)
		return firedJob{}
	}
}

// none fails the test if a job runs within wait.
func (l jobLog) none(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case f := <-l:
		t.Fatalf("job %d ran, want none", f.n)
	case <-time.After(wait):
	}
}

func startClock(t *testing.T, res time.Duration) *probeClock {
	t.Helper()
	c := newProbeClock(res, zerolog.Nop())
	t.Cleanup(c.stop)
	return c
}

// Jobs run in the order they fall due, none before its time, whatever
// the order they were scheduled in.
func TestClockRunsJobsWhenDue(t *testing.T) {
	c := startClock(t, time.Millisecond)
	l := newJobLog()

	t0 := time.Now()
	delays := []time.Duration{60 * time.Millisecond, 20 * time.Millisecond,
		40 * time.Millisecond}
	for i, d := range delays {
		c.schedule(&clockEntry{}, t0.Add(d), l.job(i))
	}
	var got []int
	for range delays {
		f := l.next(t, 5*time.Second)
		got = append(got, f.n)
		if due := t0.Add(delays[f.n]); f.at.Before(due) {
			t.Errorf("job %d ran %v before it was due", f.n, due.Sub(f.at))
		}
	}
	if want := []int{1, 2, 0}; !slices.Equal(got, want) {
		t.Errorf("jobs ran in order %v, want %v", got, want)
	}
}

// Scheduling an entry again replaces its pending job, and cancel drops
// it: the clock runs only the last job scheduled, once.
func TestClockReplacesAndCancels(t *testing.T) {
	c := startClock(t, time.Millisecond)
	l := newJobLog()
	e := &clockEntry{}

	now := time.Now()
	c.schedule(e, now.Add(30*time.Millisecond), l.job(1))
	c.schedule(e, now.Add(10*time.Millisecond), l.job(2))
	c.schedule(e, now.Add(50*time.Millisecond), l.job(3))
	if f := l.next(t, 5*time.Second); f.n != 3 {
		t.Fatalf("job %d ran, want 3", f.n)
	}
	l.none(t, 100*time.Millisecond)

	c.schedule(e, time.Now().Add(20*time.Millisecond), l.job(4))
	c.cancel(e)
	l.none(t, 100*time.Millisecond)
}

// reschedule puts a job off only while its entry has nothing pending: a
// job scheduled since wins.
func TestClockRescheduleYieldsToNewerJob(t *testing.T) {
	c := startClock(t, time.Millisecond)
	l := newJobLog()
	e := &clockEntry{}

	now := time.Now()
	c.schedule(e, now.Add(10*time.Millisecond), l.job(1))
	c.reschedule(e, now.Add(20*time.Millisecond), l.job(2))
	if f := l.next(t, 5*time.Second); f.n != 1 {
		t.Fatalf("job %d ran, want 1", f.n)
	}
	c.reschedule(e, time.Now().Add(10*time.Millisecond), l.job(3))
	if f := l.next(t, 5*time.Second); f.n != 3 {
		t.Fatalf("job %d ran, want 3", f.n)
	}
	l.none(t, 50*time.Millisecond)
}

// A job scheduled earlier than the clock's next round wakes it: a clock
// asleep until a job an hour away still runs one due at once.
func TestClockWakesForEarlierJob(t *testing.T) {
	c := startClock(t, time.Millisecond)
	l := newJobLog()
	c.schedule(&clockEntry{}, time.Now().Add(time.Hour), l.job(1))
	time.Sleep(10 * time.Millisecond) // the clock sleeps for the hour

	t0 := time.Now()
	c.schedule(&clockEntry{}, t0.Add(5*time.Millisecond), l.job(2))
	f := l.next(t, 5*time.Second)
	if f.n != 2 {
		t.Fatalf("job %d ran, want 2", f.n)
	}
	if late := f.at.Sub(t0); late > time.Second {
		t.Errorf("job due in 5ms ran after %v", late)
	}
}

// Jobs due within the clock's resolution of its last round wait for the
// next round, so the clock wakes at most once per resolution.
func TestClockCoalescesWithinResolution(t *testing.T) {
	res := 50 * time.Millisecond
	c := startClock(t, res)
	l := newJobLog()

	// Job 2 is scheduled once job 1 has run, so that however late the
	// first round comes, job 2 falls within the resolution after it.
	c.schedule(&clockEntry{}, time.Now(), l.job(1))
	a := l.next(t, 5*time.Second)
	c.schedule(&clockEntry{}, time.Now().Add(5*time.Millisecond), l.job(2))
	b := l.next(t, 5*time.Second)
	if a.n != 1 || b.n != 2 {
		t.Fatalf("jobs ran in order %d, %d, want 1, 2", a.n, b.n)
	}
	if gap := b.at.Sub(a.at); gap < res-5*time.Millisecond {
		t.Errorf("second round %v after the first, want about %v", gap, res)
	}
}

// panicJob panics when it runs.
type panicJob struct{}

func (panicJob) fire() { panic("test: this job panics") }

// A job that panics is logged, and the clock runs the jobs after it.
func TestClockSurvivesPanickingJob(t *testing.T) {
	var logs syncBuffer
	c := newProbeClock(time.Millisecond, zerolog.New(&logs))
	t.Cleanup(c.stop)
	l := newJobLog()

	now := time.Now()
	c.schedule(&clockEntry{}, now, panicJob{})
	c.schedule(&clockEntry{}, now.Add(10*time.Millisecond), l.job(1))
	if f := l.next(t, 5*time.Second); f.n != 1 {
		t.Fatalf("job %d ran, want 1", f.n)
	}
	if !strings.Contains(logs.String(), "clock_job_panicked") {
		t.Errorf("log = %q, want clock_job_panicked", logs.String())
	}
}

// After stop returns, the clock runs nothing.
func TestClockStop(t *testing.T) {
	c := newProbeClock(time.Millisecond, zerolog.Nop())
	l := newJobLog()
	c.schedule(&clockEntry{}, time.Now().Add(20*time.Millisecond), l.job(1))
	c.stop()
	c.stop() // a second stop returns too
	l.none(t, 100*time.Millisecond)
}

// The heap gives its items back in order of due time.
func TestClockHeapOrder(t *testing.T) {
	var h clockHeap
	for _, at := range []time.Duration{5, 3, 9, 1, 7, 3, 8, 2, 6, 4, 0} {
		h.push(clockItem{at: at})
	}
	prev := time.Duration(-1)
	for len(h) > 0 {
		it := h.pop()
		if it.at < prev {
			t.Fatalf("popped %v after %v", it.at, prev)
		}
		prev = it.at
	}
}

// Cancelled items are dropped from the heap once they are half of it,
// and the jobs still pending run as planned.
func TestClockCompactsStaleItems(t *testing.T) {
	c := startClock(t, time.Millisecond)
	l := newJobLog()
	far := time.Now().Add(time.Hour)
	entries := make([]*clockEntry, 3*clockCompactMin)
	for i := range entries {
		entries[i] = &clockEntry{}
		c.schedule(entries[i], far, l.job(i))
	}
	for _, e := range entries[:2*clockCompactMin] {
		c.cancel(e)
	}
	c.mu.Lock()
	items, stale := len(c.items), c.stale
	c.mu.Unlock()
	if items > 2*clockCompactMin || stale >= clockCompactMin {
		t.Errorf("heap holds %d items, %d stale, after cancelling %d of %d",
			items, stale, 2*clockCompactMin, len(entries))
	}
	c.schedule(entries[len(entries)-1], time.Now(), l.job(-1))
	if f := l.next(t, 5*time.Second); f.n != -1 {
		t.Fatalf("job %d ran, want the one rescheduled", f.n)
	}
}
