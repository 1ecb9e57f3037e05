package actors

import (
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// clockResolution is the least time between two rounds of jobs: jobs
// falling due within it of each other go out together, so the clock
// wakes at most once a millisecond however many checks it serves, at the
// cost of starting a probe up to that much after its plan.
const clockResolution = time.Millisecond

// clockIdle is how long the clock sleeps when no job is scheduled; a
// schedule wakes it earlier.
const clockIdle = time.Hour

// clockCompactMin is the fewest stale items worth a pass over the heap.
const clockCompactMin = 1024

// clockJob is what the clock runs when it falls due, on the clock's
// goroutine: it must not block.
type clockJob interface {
	fire()
}

// probeClock runs the checks' planned probes as they fall due, from a
// single goroutine and a heap of due times.
//
// It replaces a runtime timer per check, each of whose firings started a
// goroutine of its own, which then sent the check a message to start the
// probe: at 10,000 probes a second those goroutines and messages cost
// more CPU than the starts themselves (tests/load). The clock's
// goroutine lives as long as the clock, and the job it runs, a
// plannedProbe's fire, hands the probe to a worker without blocking.
//
// Its methods are safe for concurrent use. The manager owns the clock:
// stop ends its goroutine and waits for it.
type probeClock struct {
	// base is the monotonic origin of the items' due times.
	base time.Time
	res  time.Duration

	mu    sync.Mutex
	items clockHeap
	// stale counts the items whose job was cancelled or replaced; they
	// are dropped when they fall due, or all at once when they are half
	// of the heap, so that dropped probes are not kept for an interval.
	stale int
	// wakeAt is when the goroutine next wakes by itself; lastRound is when
	// it last ran jobs. Both are measured from base.
	wakeAt    time.Duration
	lastRound time.Duration

	// log receives a job's panic.
	log zerolog.Logger

	wake chan struct{} // buffered 1: a schedule earlier than wakeAt
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// clockEntry is one check's place on the clock: at most one job pending
// at a time, the one the check last scheduled.
type clockEntry struct {
	// job is the pending job, or nil; it is guarded by the clock's mu. A
	// rescheduled or cancelled job stays in the heap until it falls due,
	// then is dropped as it is no longer its entry's, unless compaction
	// drops it sooner (see probeClock.stale).
	job clockJob
}

// clockItem is one scheduled job in the heap.
type clockItem struct {
	at    time.Duration // since the clock's base
	job   clockJob
	entry *clockEntry
}

func newProbeClock(res time.Duration, log zerolog.Logger) *probeClock {
	c := &probeClock{
		base:   time.Now(),
		res:    res,
		log:    log,
		wakeAt: clockIdle,
		// No round yet: the first may come at once.
		lastRound: -res,
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go c.run()
	return c
}

// schedule makes e run job at at, replacing the job e had pending, if
// any.
func (c *probeClock) schedule(e *clockEntry, at time.Time, job clockJob) {
	c.mu.Lock()
	c.scheduleLocked(e, at, job)
}

// reschedule makes e run job at at, unless e has a job pending: a job
// that puts itself off (see plannedProbe.start) must not replace the
// one its check has scheduled since.
func (c *probeClock) reschedule(e *clockEntry, at time.Time, job clockJob) {
	c.mu.Lock()
	if e.job != nil {
		c.mu.Unlock()
		return
	}
	c.scheduleLocked(e, at, job)
}

// scheduleLocked is schedule with c.mu held, which it unlocks.
func (c *probeClock) scheduleLocked(e *clockEntry, at time.Time, job clockJob) {
	item := clockItem{at: at.Sub(c.base), job: job, entry: e}
	if e.job != nil {
		c.stale++
	}
	e.job = job
	c.items.push(item)
	c.compactLocked()
	// Wake the goroutine only if the item moves its next round earlier.
	early := max(item.at, c.lastRound+c.res) < c.wakeAt
	c.mu.Unlock()
	if early {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// cancel drops e's pending job, if any. A job already taken from the
// heap may still run.
func (c *probeClock) cancel(e *clockEntry) {
	c.mu.Lock()
	if e.job != nil {
		c.stale++
		e.job = nil
		c.compactLocked()
	}
	c.mu.Unlock()
}

// compactLocked drops the stale items once they are half of a heap of
// some size, with c.mu held.
func (c *probeClock) compactLocked() {
	if c.stale < clockCompactMin || c.stale < len(c.items)/2 {
		return
	}
	live := c.items[:0]
	for _, it := range c.items {
		if it.entry.job == it.job {
			live = append(live, it)
		}
	}
	clear(c.items[len(live):])
	c.items = live
	c.items.init()
	c.stale = 0
}

// stop ends the clock's goroutine and waits for it; no job runs after
// stop returns.
func (c *probeClock) stop() {
	c.once.Do(func() { close(c.quit) })
	<-c.done
}

func (c *probeClock) run() {
	defer close(c.done)
	t := time.NewTimer(clockIdle)
	defer t.Stop()
	var due []clockJob
	for {
		var wait time.Duration
		due, wait = c.takeDue(due[:0])
		if len(due) > 0 {
			for i, job := range due {
				c.fire(job)
				due[i] = nil // keeps no job alive
			}
			// The round took time: the next wait is to be told from now.
			continue
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-c.wake:
		case <-c.quit:
			return
		}
	}
}

// fire runs one job. A job that panics is logged and the clock goes on:
// it starts every check's probes, so one check's bug must not stop the
// others'. The check whose job it was probes no more until its config
// changes or it restarts. A prober builder's panic is caught nearer, in
// plannedProbe.build, which fails that probe instead.
func (c *probeClock) fire(job clockJob) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error().Str("panic", fmt.Sprint(r)).
				Str("stack", string(debug.Stack())).Msg("clock_job_panicked")
		}
	}()
	job.fire()
}

// takeDue appends the jobs due now to due, and returns them with how long
// to sleep before the next round: until the next job is due, but not
// within the resolution of the last round.
func (c *probeClock) takeDue(due []clockJob) ([]clockJob, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Since(c.base)
	if now >= c.lastRound+c.res {
		for len(c.items) > 0 && c.items[0].at <= now {
			it := c.items.pop()
			if e := it.entry; e.job == it.job {
				e.job = nil
				due = append(due, it.job)
			} else {
				c.stale--
			}
		}
		if len(due) > 0 {
			c.lastRound = now
		}
	}
	wait := clockIdle
	if len(c.items) > 0 {
		wait = max(c.items[0].at-now, c.lastRound+c.res-now, 0)
	}
	c.wakeAt = now + wait
	return due, wait
}

// clockHeap is a binary min-heap of jobs by due time. Its items hold
// their keys, so that ordering them reads no entry.
type clockHeap []clockItem

func (h *clockHeap) push(it clockItem) {
	*h = append(*h, it)
	items := *h
	i := len(items) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if items[parent].at <= it.at {
			break
		}
		items[i] = items[parent]
		i = parent
	}
	items[i] = it
}

// init orders the items into a heap.
func (h clockHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// pop removes and returns the earliest item; h must not be empty.
func (h *clockHeap) pop() clockItem {
	items := *h
	top := items[0]
	n := len(items) - 1
	items[0] = items[n]
	items[n] = clockItem{}
	*h = items[:n]
	h.down(0)
	return top
}

// down moves the item at i down to its place.
func (h clockHeap) down(i int) {
	if len(h) == 0 {
		return
	}
	it := h[i]
	for {
		child := 2*i + 1
		if child >= len(h) {
			break
		}
		if right := child + 1; right < len(h) && h[right].at < h[child].at {
			child = right
		}
		if it.at <= h[child].at {
			break
		}
		h[i] = h[child]
		i = child
	}
	h[i] = it
}
