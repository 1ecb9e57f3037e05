package actors

import (
	"testing"
	"time"
)

func TestPhaseSpreadsSequentialIDs(t *testing.T) {
	// Seesaw numbers checks sequentially from (pid&0xFFFF)<<48.
	const (
		n        = 10000
		buckets  = 10
		interval = 5 * time.Second
		base     = uint64(4242) << 48
	)
	var counts [buckets]int
	for i := range uint64(n) {
		p := phase(base+i, interval)
		if p < 0 || p >= interval {
			t.Fatalf("phase(%d) = %v, outside [0, %v)", base+i, p, interval)
		}
		counts[int(p*buckets/interval)]++
	}
	// Each tenth of the interval should hold about n/buckets checks.
	for i, c := range counts {
		if c < n/buckets*8/10 || c > n/buckets*12/10 {
			t.Errorf("bucket %d holds %d checks, want about %d", i, c, n/buckets)
		}
	}
}

func TestFirstRun(t *testing.T) {
	now := time.Unix(1_700_000_000, 123456789)
	for _, interval := range []time.Duration{time.Millisecond, time.Second, time.Hour} {
		for id := range uint64(100) {
			got := firstRun(id, interval, now)
			if got.Before(now) || !got.Before(now.Add(interval)) {
				t.Fatalf("firstRun(%d, %v) = %v, want within [now, now+interval)",
					id, interval, got.Sub(now))
			}
			offset := time.Duration(uint64(got.UnixNano()) % uint64(interval))
			if want := phase(id, interval); offset != want {
				t.Fatalf("firstRun(%d, %v) lands on offset %v, want phase %v",
					id, interval, offset, want)
			}
		}
	}
}

func TestNextRun(t *testing.T) {
	prev := time.Unix(1000, 0)
	tests := []struct {
		name string
		now  time.Time
		want time.Time
	}{
		{"probe finished early", prev.Add(time.Second), prev.Add(10 * time.Second)},
		{"probe ended exactly on the next start",
			prev.Add(10 * time.Second), prev.Add(20 * time.Second)},
		{"probe overran two starts",
			prev.Add(25 * time.Second), prev.Add(30 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextRun(prev, 10*time.Second, tt.now); !got.Equal(tt.want) {
				t.Errorf("nextRun = %v, want %v", got.Sub(prev), tt.want.Sub(prev))
			}
		})
	}
}
