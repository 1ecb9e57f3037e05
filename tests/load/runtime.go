package main

import (
	"math"
	"runtime/metrics"
	"time"
)

// The runtime's own measures the harness reads around a window.
const (
	schedLatencies = "/sched/latencies:seconds"
	gcPauses       = "/sched/pauses/total/gc:seconds"
	gcCycles       = "/gc/cycles/total:gc-cycles"
)

// runtimeStats is what the Go runtime saw during a window: how long
// runnable goroutines waited for a thread (every probe start waits at
// least once: the naive design's once, the supervisor's for each hop
// from timer to actor to probe), and the garbage collector's cycles and
// stop-the-world pauses.
type runtimeStats struct {
	SchedP50, SchedP99 time.Duration
	GCCycles           uint64
	GCPauseP99         time.Duration
	GCPauseTotal       time.Duration
}

// runtimeSnapshot is a reading of the runtime's metrics.
type runtimeSnapshot []metrics.Sample

func readRuntime() runtimeSnapshot {
	s := []metrics.Sample{{Name: schedLatencies}, {Name: gcPauses}, {Name: gcCycles}}
	metrics.Read(s)
	return s
}

// since returns what happened between earlier and now.
func (now runtimeSnapshot) since(earlier runtimeSnapshot) runtimeStats {
	var st runtimeStats
	if now[0].Value.Kind() == metrics.KindFloat64Histogram {
		h := histDelta(now[0].Value.Float64Histogram(), earlier[0].Value.Float64Histogram())
		st.SchedP50, st.SchedP99 = h.quantile(0.5), h.quantile(0.99)
	}
	if now[1].Value.Kind() == metrics.KindFloat64Histogram {
		h := histDelta(now[1].Value.Float64Histogram(), earlier[1].Value.Float64Histogram())
		st.GCPauseP99, st.GCPauseTotal = h.quantile(0.99), h.total()
	}
	if now[2].Value.Kind() == metrics.KindUint64 {
		st.GCCycles = now[2].Value.Uint64() - earlier[2].Value.Uint64()
	}
	return st
}

// bucketHist is the difference of two readings of a runtime histogram.
type bucketHist struct {
	counts  []uint64
	buckets []float64
}

func histDelta(now, earlier *metrics.Float64Histogram) bucketHist {
	h := bucketHist{counts: make([]uint64, len(now.Counts)), buckets: now.Buckets}
	for i := range now.Counts {
		h.counts[i] = now.Counts[i] - earlier.Counts[i]
	}
	return h
}

// quantile returns the upper bound of the bucket that holds quantile q.
func (h bucketHist) quantile(q float64) time.Duration {
	var n uint64
	for _, c := range h.counts {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return seconds(h.buckets[i+1])
		}
	}
	return 0
}

// total estimates the sum of the values, each at its bucket's midpoint.
func (h bucketHist) total() time.Duration {
	var t float64
	for i, c := range h.counts {
		lo, hi := h.buckets[i], h.buckets[i+1]
		if math.IsInf(lo, -1) {
			lo = 0
		}
		if math.IsInf(hi, 1) {
			hi = lo
		}
		t += float64(c) * (lo + hi) / 2
	}
	return seconds(t)
}

func seconds(s float64) time.Duration {
	if math.IsInf(s, 1) {
		return -1
	}
	return time.Duration(s * float64(time.Second))
}
