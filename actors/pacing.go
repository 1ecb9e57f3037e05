package actors

import (
	"math/rand/v2"
	"sync"
	"time"
)

// startLimiter spaces probe starts across all checks of a manager to at
// most a rate per second, so that no burst of starts exceeds what the
// machine or the network should take. It is safe for concurrent use; a
// nil *startLimiter limits nothing.
type startLimiter struct {
	gap time.Duration

	mu   sync.Mutex
	next time.Time
}

func newStartLimiter(perSecond float64) *startLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &startLimiter{gap: time.Duration(float64(time.Second) / perSecond)}
}

// reserve takes the next start slot and returns how long to wait for it.
func (l *startLimiter) reserve(now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	slot := l.next
	if slot.Before(now) {
		slot = now
	}
	l.next = slot.Add(l.gap)
	return slot.Sub(now)
}

// jitterOffset returns a random delay of up to jitter × interval, added to
// a planned start so that checks sharing a phase do not stay in step.
func jitterOffset(interval time.Duration, jitter float64) time.Duration {
	if jitter <= 0 {
		return 0
	}
	return time.Duration(rand.Float64() * jitter * float64(interval))
}
