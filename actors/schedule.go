package actors

import "time"

// phase returns where in each interval the probes of check id start. It is
// a hash of the ID, so that checks with sequential IDs (as the Seesaw
// Engine numbers them) spread evenly over the interval, and it depends on
// nothing else, so a check keeps its phase across restarts and reloads.
func phase(id uint64, interval time.Duration) time.Duration {
	return time.Duration(mix64(id) % uint64(interval))
}

// mix64 is the SplitMix64 finaliser: a bijection on uint64 whose output
// bits each depend on every input bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// firstRun returns the first time at or after now that falls on check id's
// phase, measured against the wall clock so that the phase holds across
// processes too.
func firstRun(id uint64, interval time.Duration, now time.Time) time.Time {
	offset := time.Duration(uint64(now.UnixNano()) % uint64(interval))
	wait := (phase(id, interval) - offset + interval) % interval
	return now.Add(wait)
}

// nextRun returns the first planned start after now that keeps the fixed
// rate of a check planned at prev: prev plus a whole number of intervals.
// Starts missed because a probe overran are skipped, not caught up.
func nextRun(prev time.Time, interval time.Duration, now time.Time) time.Time {
	next := prev.Add(interval)
	if next.After(now) {
		return next
	}
	missed := now.Sub(next)/interval + 1
	return next.Add(missed * interval)
}
