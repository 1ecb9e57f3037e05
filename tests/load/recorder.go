package main

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/messages"
)

// slot is the resolution of the start-rate record.
const slot = 100 * time.Millisecond

// recorder watches every probe a design runs, through a wrapper around
// each check's prober: when each check first ran, how many probes start
// per slot, how late they start, which fail and why. Everything it needs
// is allocated by newRecorder, before the empty process is measured, so
// it adds nothing to the memory per check. It is safe for concurrent use.
type recorder struct {
	s *spec
	// t0 is when the checks were configured, in Unix nanoseconds.
	t0 atomic.Int64
	// first holds each check's first start, in Unix nanoseconds.
	first   []atomic.Int64
	ranOnce atomic.Int64
	// perSlot counts the probes started in each slot after t0.
	perSlot []atomic.Int64

	starts, fails atomic.Int64
	// lag holds the start lag of probes started while steady is set.
	lag    hist
	steady atomic.Bool

	// failAt is when the latency phase failed the victims' backends;
	// victimEnd then holds when each victim's first failed probe ended.
	failAt    atomic.Int64
	victimEnd []atomic.Int64

	mu       sync.Mutex
	failMsgs map[string]int64
}

func newRecorder(s *spec) *recorder {
	slots := int(4*s.Interval/slot) + 1
	return &recorder{
		s:         s,
		first:     make([]atomic.Int64, s.N),
		perSlot:   make([]atomic.Int64, slots),
		victimEnd: make([]atomic.Int64, s.N),
		failMsgs:  make(map[string]int64),
	}
}

// configured marks the moment the checks were handed to the design.
func (r *recorder) configured(t time.Time) { r.t0.Store(t.UnixNano()) }

// started records that check i started a probe at now, lag after its
// plan.
func (r *recorder) started(i int, now time.Time, lag time.Duration) {
	ns := now.UnixNano()
	r.starts.Add(1)
	if r.first[i].CompareAndSwap(0, ns) {
		r.ranOnce.Add(1)
	}
	if s := (ns - r.t0.Load()) / int64(slot); s >= 0 && s < int64(len(r.perSlot)) {
		r.perSlot[s].Add(1)
	}
	if r.steady.Load() {
		r.lag.add(max(lag, 0))
	}
}

// finished records the result of check i's probe, which ended at end.
func (r *recorder) finished(i int, res messages.ProbeResult, end time.Time) {
	if res.Success {
		return
	}
	fa := r.failAt.Load()
	if fa != 0 && r.s.isVictim(i) {
		if end.UnixNano() > fa {
			r.victimEnd[i].CompareAndSwap(0, end.UnixNano())
		}
		return
	}
	r.fails.Add(1)
	msg := res.Message
	if len(msg) > 120 {
		msg = msg[:120]
	}
	r.mu.Lock()
	if len(r.failMsgs) < 1000 {
		r.failMsgs[msg]++
	}
	r.mu.Unlock()
}

// waitAllRan waits until every check has started a probe, or until
// deadline, and returns how long after t0 the last one started.
func (r *recorder) waitAllRan(deadline time.Time) (time.Duration, bool) {
	for r.ranOnce.Load() < int64(r.s.N) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r.ranOnce.Load() < int64(r.s.N) {
		return 0, false
	}
	var last int64
	for i := range r.first {
		last = max(last, r.first[i].Load())
	}
	return time.Duration(last - r.t0.Load()), true
}

// burst returns the most probes started in any one-second window that
// fits within the first interval after t0, divided by the average rate
// the schedule plans.
func (r *recorder) burst() float64 {
	per := int(time.Second / slot)
	slots := int(r.s.Interval / slot)
	var best int64
	for start := 0; start+per <= slots; start++ {
		var n int64
		for i := start; i < start+per; i++ {
			n += r.perSlot[i].Load()
		}
		best = max(best, n)
	}
	return float64(best) / r.s.plannedRate()
}

// topFailures returns the most frequent failure messages, at most k.
func (r *recorder) topFailures(k int) []failure {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]failure, 0, len(r.failMsgs))
	for m, n := range r.failMsgs {
		out = append(out, failure{Message: m, Count: n})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Count > out[b].Count })
	return out[:min(k, len(out))]
}

// failure is one failure message and how often it was seen.
type failure struct {
	Message string
	Count   int64
}

// rearmVictims starts a latency phase at failAt: it forgets the victims'
// failures seen so far. The victims' backends must be up meanwhile.
func (r *recorder) rearmVictims(failAt time.Time) {
	r.failAt.Store(failAt.UnixNano())
	for i := range r.victimEnd {
		r.victimEnd[i].Store(0)
	}
}

// victims returns, for each victim check whose failing probe was seen,
// its ID and when that probe ended, in Unix nanoseconds.
func (r *recorder) victims() map[uint64]int64 {
	out := make(map[uint64]int64)
	for i := range r.victimEnd {
		if t := r.victimEnd[i].Load(); t != 0 {
			out[checkID(i)] = t
		}
	}
	return out
}

// victimCount returns how many checks probe a victim listener.
func (s *spec) victimCount() int {
	n := 0
	for i := range s.N {
		if s.isVictim(i) {
			n++
		}
	}
	return n
}

// waitVictims waits until every victim has failed a probe, or deadline.
func (r *recorder) waitVictims(want int, deadline time.Time) int {
	for time.Now().Before(deadline) {
		if n := len(r.victims()); n >= want {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
	return len(r.victims())
}

// scheduledProber wraps the prober of check i of a design whose start
// times follow the phase model (see planLag).
type scheduledProber struct {
	next actors.Prober
	i    int
	id   uint64
	iv   time.Duration
	rec  *recorder
}

// Probe records the probe's start, lag and result around the real probe.
func (p *scheduledProber) Probe(ctx context.Context) messages.ProbeResult {
	now := time.Now()
	p.rec.started(p.i, now, planLag(p.id, p.iv, now))
	res := p.next.Probe(ctx)
	p.rec.finished(p.i, res, time.Now())
	return res
}

// planLag returns how late a probe of check id that starts at now is
// against the supervisor's plan. It mirrors actors/schedule.go: a check's
// probes start at a fixed phase in its interval, a hash of its ID,
// measured against the wall clock (phase and firstRun there). If that
// plan changes, so must this; the table also shows the lag from the
// server's own hc_probe_start_lag_seconds histogram to cross-check it.
//
// A probe that starts more than half an interval after its plan is taken
// as one that started early, and counts as on time.
func planLag(id uint64, interval time.Duration, now time.Time) time.Duration {
	iv := uint64(interval)
	off := uint64(now.UnixNano()) % iv
	lag := (off + iv - phase(id, interval)) % iv
	if lag > iv/2 {
		return 0
	}
	return time.Duration(lag)
}

// phase is the supervisor's phase of check id: see actors/schedule.go.
func phase(id uint64, interval time.Duration) uint64 {
	return mix64(id) % uint64(interval)
}

// mix64 is the SplitMix64 finaliser, as in actors/schedule.go.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// firstPlanned returns the first planned start of check id at or after
// now, on the same phase as the supervisor's.
func firstPlanned(id uint64, interval time.Duration, now time.Time) time.Time {
	iv := uint64(interval)
	off := uint64(now.UnixNano()) % iv
	wait := (phase(id, interval) + iv - off) % iv
	return now.Add(time.Duration(wait))
}
