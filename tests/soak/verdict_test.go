package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

// series returns n samples 10s apart from start on, each measure at
// level × (1 + growth per minute × minutes) plus the wobble of noise,
// with spike multiplying the sample at index spikeAt.
type series struct {
	n       int
	start   time.Duration
	size    float64 // multiplies every measure's level; 0: 1
	growth  float64 // fraction of the level per minute
	noise   float64 // fraction of the level
	spikeAt int     // with spike 0: none
	spike   float64
}

func (s series) samples() []sample {
	var out []sample
	for i := range s.n {
		at := s.start + time.Duration(i)*10*time.Second
		f := 1 + s.growth*at.Minutes() + s.noise*math.Sin(float64(i)*1.7)
		if s.spike != 0 && i == s.spikeAt {
			f *= s.spike
		}
		if s.size != 0 {
			f *= s.size
		}
		out = append(out, sample{
			at: at, rss: 300 * f, heap: 120 * f, goroutines: 5000 * f, fds: 400 * f,
		})
	}
	return out
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name    string
		samples []sample
		wantErr []string // parts of the error; none: passes
	}{
		{
			name:    "flat with noise",
			samples: series{n: 18, start: time.Minute, noise: 0.03}.samples(),
		},
		{
			name: "flat with a sample taken mid-restart",
			samples: series{n: 12, start: time.Minute, noise: 0.01,
				spikeAt: 11, spike: 1.6}.samples(),
		},
		{
			name: "growth in the warm-up only",
			samples: append(
				series{n: 6, growth: 0.5}.samples(),
				series{n: 12, start: time.Minute, growth: 0}.samples()...),
		},
		{
			name:    "steady growth",
			samples: series{n: 18, start: time.Minute, growth: 0.05, noise: 0.01}.samples(),
			wantErr: []string{"heap_mib grows", "rss_mib grows", "goroutines grows"},
		},
		{
			// 0.5%/min: over the absolute limits of heap, rss and goroutines,
			// under the relative ones.
			name:    "slow growth within the limits",
			samples: series{n: 18, start: time.Minute, growth: 0.005}.samples(),
		},
		{
			// 10%/min: over the relative limits, under the absolute ones.
			name: "a small measure's growth within the absolute limits",
			samples: series{n: 18, start: time.Minute, size: 0.01,
				growth: 0.1}.samples(),
		},
		{
			name:    "growth within a short run's noise",
			samples: series{n: 12, start: time.Minute, growth: 0.04, noise: 0.08}.samples(),
		},
		{
			name:    "the same growth over a long run",
			samples: series{n: 60, start: time.Minute, growth: 0.04, noise: 0.08}.samples(),
			wantErr: []string{"heap_mib grows"},
		},
		{
			name:    "too short",
			samples: series{n: 12}.samples(),
			wantErr: []string{"6 samples after the 1m0s warm-up"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := judge(tt.samples, time.Minute)
			if len(tt.wantErr) == 0 {
				if v.err != nil {
					t.Errorf("judge: %v, want a pass\n%s", v.err, v.table)
				}
				return
			}
			if v.err == nil {
				t.Fatalf("judge passed, want an error with %q\n%s",
					tt.wantErr, v.table)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(v.err.Error(), want) {
					t.Errorf("judge: %v, want it to contain %q", v.err, want)
				}
			}
		})
	}
}

func TestTheilSenIgnoresOutliers(t *testing.T) {
	s := series{n: 12, spikeAt: 5, spike: 3}.samples()
	heap := func(s sample) float64 { return s.heap }
	if got := theilSen(s, heap); math.Abs(got) > 1e-9 {
		t.Errorf("slope of a flat series with one outlier = %v/min, want 0", got)
	}
	s = series{n: 12, growth: 0.1, spikeAt: 2, spike: 0.2}.samples()
	// 10% of 120 MiB per minute.
	if got, want := theilSen(s, heap), 12.0; math.Abs(got-want) > 0.5 {
		t.Errorf("slope of a growing series with one outlier = %v/min, want %v", got, want)
	}
}
