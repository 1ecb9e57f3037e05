package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// minSamples is the fewest samples after the warm-up that the verdict
// judges: fewer give a slope that one restart's sample can swing.
const minSamples = 10

// minDuration returns the shortest -duration that yields minSamples
// samples after the warm-up.
func minDuration(o options) time.Duration {
	return o.warmup + minSamples*o.sampleGap
}

// sample is the process's size at one moment.
type sample struct {
	at         time.Duration
	rss        float64 // MiB
	heap       float64 // MiB live after a collection
	goroutines float64
	fds        float64
}

// growthLimit is how fast a measure may grow, per minute: the larger of
// an absolute rate and a fraction of the measure's own level, since a
// fixed rate means little for measures whose levels differ tenfold
// between runs.
type growthLimit struct {
	abs float64 // units per minute
	rel float64 // fraction of the level per minute
}

func (l growthLimit) at(level float64) float64 {
	return max(l.abs, l.rel*level)
}

// measure is one quantity the verdict judges.
type measure struct {
	name  string
	get   func(sample) float64
	limit growthLimit
}

// measures are the judged quantities. Live heap is the sharpest sign of
// a leak; RSS lags it (freed pages return to the system slowly) and
// keeps the highest peak, so it gets more room.
var measures = []measure{
	{"heap_mib", func(s sample) float64 { return s.heap }, growthLimit{0.5, 0.01}},
	{"rss_mib", func(s sample) float64 { return s.rss }, growthLimit{1, 0.02}},
	{"goroutines", func(s sample) float64 { return s.goroutines }, growthLimit{20, 0.02}},
	{"open_files", func(s sample) float64 { return s.fds }, growthLimit{5, 0.02}},
}

// verdict is the judgement of the samples.
type verdict struct {
	table string
	err   error
}

// noiseK is how many robust standard deviations of the samples around
// their trend a measure must grow by over the judged window: growth
// within the noise cannot be told from it.
const noiseK = 3

// judge fails a measure whose Theil–Sen slope (the median of the slopes
// between every two samples, which a few outliers such as a sample taken
// mid-restart cannot move) exceeds its limit. The limit is the measure's
// growthLimit at its median level, raised to the slope a run of this
// length can tell from the measure's noise: a short run catches fast
// growth only, the default ten minutes slow growth too. Samples of the
// warm-up are left out: pools, caches and the collector's heap goal
// settle there, and that growth is bounded.
func judge(all []sample, warmup time.Duration) verdict {
	i := slices.IndexFunc(all, func(s sample) bool { return s.at >= warmup })
	if i < 0 {
		i = len(all)
	}
	samples := all[i:]
	if len(samples) < minSamples {
		return verdict{err: fmt.Errorf("%d samples after the %v warm-up, "+
			"want at least %d: run longer", len(samples), warmup, minSamples)}
	}

	var b strings.Builder
	writeSamples(&b, all, warmup)
	first, last := samples[0].at, samples[len(samples)-1].at
	fmt.Fprintf(&b, "%d samples from %v to %v judged\n", len(samples),
		first.Round(time.Second), last.Round(time.Second))
	fmt.Fprintf(&b, "%-10s %8s %10s %8s %9s\n",
		"measure", "level", "theil-sen", "noise", "limit")
	var errs []error
	for _, m := range measures {
		level := median(values(samples, m.get))
		slope := theilSen(samples, m.get)
		sd := noise(samples, m.get, slope)
		limit := max(m.limit.at(level), noiseK*sd/(last-first).Minutes())
		fmt.Fprintf(&b, "%-10s %8.1f %8.2f/m %8.2f %7.2f/m\n",
			m.name, level, slope, sd, limit)
		if slope > limit {
			errs = append(errs, fmt.Errorf("%s grows %.2f/min; limit %.2f/min",
				m.name, slope, limit))
		}
	}
	return verdict{table: b.String(), err: errors.Join(errs...)}
}

// writeSamples lists every sample, marking those of the warm-up.
func writeSamples(b *strings.Builder, all []sample, warmup time.Duration) {
	fmt.Fprintf(b, "%8s %8s %8s %10s %10s\n",
		"at", "heap_mib", "rss_mib", "goroutines", "open_files")
	for _, s := range all {
		mark := ""
		if s.at < warmup {
			mark = " warm-up"
		}
		fmt.Fprintf(b, "%8v %8.1f %8.1f %10.0f %10.0f%s\n", s.at.Round(time.Second),
			s.heap, s.rss, s.goroutines, s.fds, mark)
	}
}

// noise is the robust standard deviation (1.4826 × the median absolute
// deviation) of the samples around the line of the given slope through
// their median.
func noise(samples []sample, get func(sample) float64, slope float64) float64 {
	resid := make([]float64, len(samples))
	for i, s := range samples {
		resid[i] = get(s) - slope*s.at.Minutes()
	}
	mid := median(slices.Clone(resid))
	for i, r := range resid {
		resid[i] = math.Abs(r - mid)
	}
	return 1.4826 * median(resid)
}

// theilSen returns the median of the slopes, per minute, between every
// two samples.
func theilSen(samples []sample, get func(sample) float64) float64 {
	var slopes []float64
	for i, a := range samples {
		for _, b := range samples[i+1:] {
			if dt := (b.at - a.at).Minutes(); dt > 0 {
				slopes = append(slopes, (get(b)-get(a))/dt)
			}
		}
	}
	return median(slopes)
}

// values returns get of each sample.
func values(samples []sample, get func(sample) float64) []float64 {
	out := make([]float64, len(samples))
	for i, s := range samples {
		out[i] = get(s)
	}
	return out
}

// median returns the median of xs, or 0 for none; it sorts xs.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	mid := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[mid]
	}
	return (xs[mid-1] + xs[mid]) / 2
}
