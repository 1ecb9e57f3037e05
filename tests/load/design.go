package main

import (
	"net/netip"
	"time"
)

// designResult is what a design's role measured; the supervisor's also
// carries the phases only it has.
type designResult struct {
	// Planned is the probes per second the schedule asks for.
	Planned float64
	// Empty is the process before any check was configured; Loaded after
	// every check has run once.
	Empty, Loaded memSnapshot
	// AllRan is the time from configuring the checks until the last one
	// started its first probe; AllRanOK is false if some never did.
	AllRan   time.Duration
	AllRanOK bool
	RanOnce  int64
	// Burst is the most probe starts in a one-second window of the first
	// interval, over the planned rate.
	Burst float64

	// The steady-state window.
	Steady steadyResult

	// Supervisor only.
	TelemetryLag *bucketLag     `json:",omitempty"`
	Apply        *applyResult   `json:",omitempty"`
	Latency      *latencyProbes `json:",omitempty"`
	// SplitLatency is the latency phase again, through the split
	// deployment's proxy; nil when it was not measured, and SplitError
	// then says why, if it was to be.
	SplitLatency *latencyProbes  `json:",omitempty"`
	SplitError   string          `json:",omitempty"`
	Server       *processDetails `json:",omitempty"`
}

// steadyResult is what one steady-state window measured.
type steadyResult struct {
	Window     time.Duration
	Probes     int64
	PerSec     float64
	CPU        time.Duration
	CPUPer1000 time.Duration
	// Backends is the backends' CPU in the window.
	Backends time.Duration
	MachineLoad
	// Lag is the start lag against each design's own plan.
	Lag quantiles
	// Runtime is what the Go runtime saw in the window.
	Runtime runtimeStats
	// Goroutines and ThreadsMax and RSSMax are sampled every second.
	Goroutines int
	ThreadsMax int
	RSSMax     int64
	Failures   int64
	Top        []failure
	// TimeWaitMax is the most TIME_WAIT sockets seen in the namespace;
	// TW splits them by side at the window's end.
	TimeWaitMax int
	TW          twSplit
}

// bucketLag is the start lag read from the server's own histogram,
// hc_probe_start_lag_seconds: the fraction of the window's probes under
// each bound, and the quantiles as the bucket bounds they fall under.
type bucketLag struct {
	N          int64
	P50, P99   time.Duration
	Under25ms  float64
	BucketNote string
}

// applyResult holds the config-apply phase's times.
type applyResult struct {
	// Add is the time from sending N new configs until the manager's
	// status reply lists them all; StatusReply is how long one status
	// reply of N checks takes alone, included in each time here.
	Add         time.Duration
	StatusReply time.Duration
	// Change is the time until a 10% change (a new target for every
	// tenth check) shows in every changed check's status; ChangeManager
	// until the first status reply after it, when the manager has
	// handled the update and told the changed checks.
	Change        time.Duration
	ChangeManager time.Duration
	ChangeOK      bool
	Changed       int
	Kept, KeptOf  int
	KeptBadSample []string
	// Remove is the time until the status reply is empty after N
	// removals; RemoveActors until every check actor has stopped.
	Remove       time.Duration
	RemoveActors time.Duration
}

// latencyProbes is what the supervisor's side of the latency phase saw:
// when the victims' backends failed, and when each victim's first failed
// probe ended. The coordinator adds when the Engine heard of it.
type latencyProbes struct {
	FailAt  int64
	Want    int
	Victims map[uint64]int64
}

// processDetails describes the server process in process mode.
type processDetails struct {
	Command string
	PID     int
}

// sampler samples a process's threads, goroutines, RSS and the
// namespace's TIME_WAIT sockets every second while a window runs.
type sampler struct {
	stop chan struct{}
	done chan struct{}
	res  steadyResult
	read func() (procStatus, int)
}

func startSampler(read func() (procStatus, int)) *sampler {
	sm := &sampler{stop: make(chan struct{}), done: make(chan struct{}), read: read}
	go sm.run()
	return sm
}

func (sm *sampler) run() {
	defer close(sm.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var gsum, gn int
	for {
		st, g := sm.read()
		sm.res.ThreadsMax = max(sm.res.ThreadsMax, st.Threads)
		sm.res.RSSMax = max(sm.res.RSSMax, st.RSS)
		sm.res.TimeWaitMax = max(sm.res.TimeWaitMax, timeWait())
		gsum += g
		gn++
		sm.res.Goroutines = gsum / gn
		select {
		case <-t.C:
		case <-sm.stop:
			return
		}
	}
}

// finish stops sampling and returns what was sampled.
func (sm *sampler) finish() steadyResult {
	close(sm.stop)
	<-sm.done
	return sm.res
}

// listenerSet returns the backends' listeners, for scanTimeWait.
func (s *spec) listenerSet() map[netip.AddrPort]bool {
	m := make(map[netip.AddrPort]bool, len(s.TCP)+len(s.HTTP))
	for _, a := range s.TCP {
		m[a] = true
	}
	for _, a := range s.HTTP {
		m[a] = true
	}
	return m
}
