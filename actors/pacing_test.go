package actors

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

func TestStartLimiterSpacesStarts(t *testing.T) {
	l := newStartLimiter(100) // one start every 10ms
	now := time.Unix(1000, 0)
	var waits []time.Duration
	for range 4 {
		waits = append(waits, l.reserve(now))
	}
	want := []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond,
		30 * time.Millisecond}
	if !slices.Equal(waits, want) {
		t.Errorf("waits = %v, want %v", waits, want)
	}
	// After a quiet spell, a start goes at once again.
	if got := l.reserve(now.Add(time.Second)); got != 0 {
		t.Errorf("wait after a quiet second = %v, want 0", got)
	}
	if newStartLimiter(0).reserve(now) != 0 {
		t.Error("a zero rate limited a start")
	}
}

func TestJitterOffsetStaysWithinBound(t *testing.T) {
	for range 1000 {
		if d := jitterOffset(time.Second, 0.1); d < 0 || d >= 100*time.Millisecond {
			t.Fatalf("offset %v outside [0, 100ms)", d)
		}
	}
	if jitterOffset(time.Second, 0) != 0 {
		t.Error("zero jitter moved a start")
	}
}

// TestProbeRateBoundsStarts runs checks whose phases would start them
// together, and measures the starts' spacing under a rate bound.
func TestProbeRateBoundsStarts(t *testing.T) {
	var mu sync.Mutex
	first := make(map[uint64]time.Time)
	h := newManagerHarness(t, func(c *ManagerConfig) {
		c.ProbeRate = 50 // one start every 20ms
		c.NewProber = func(cfg *messages.Config) (Prober, error) {
			id := cfg.ID
			return proberFunc(func(context.Context) messages.ProbeResult {
				mu.Lock()
				if _, ok := first[id]; !ok {
					first[id] = time.Now()
				}
				mu.Unlock()
				return messages.ProbeResult{Success: true}
			}), nil
		}
	})
	// Every phase falls within the same 10ms.
	h.update(configs(idRange(1, 20), 10*time.Millisecond)...)
	h.waitStates(t, messages.StateHealthy, idRange(1, 20)...)

	mu.Lock()
	defer mu.Unlock()
	var starts []time.Time
	for _, at := range first {
		starts = append(starts, at)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	span := starts[len(starts)-1].Sub(starts[0])
	// 20 starts at 50/s need 19 gaps of 20ms; allow timer slack below.
	if span < 19*20*time.Millisecond*9/10 {
		t.Errorf("20 starts spanned %v, want at least %v", span, 19*20*time.Millisecond)
	}
}
