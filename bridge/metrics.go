package bridge

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lbhealth/hcsupervisor/messages"
)

var (
	callsDesc = prometheus.NewDesc("hc_engine_calls_total",
		"RPC calls to the Seesaw Engine, by method.", []string{"method"}, nil)
	callErrorsDesc = prometheus.NewDesc("hc_engine_call_errors_total",
		"Failed RPC calls to the Seesaw Engine, by method.", []string{"method"}, nil)
	pendingDesc = prometheus.NewDesc("hc_engine_pending_statuses",
		"Statuses the Engine has not confirmed: queued, or in a call in flight.", nil, nil)
	unreachableDesc = prometheus.NewDesc("hc_engine_unreachable",
		"1 while max_failures or more rounds of HealthState calls in a row failed.",
		nil, nil)
	lastFetchDesc = prometheus.NewDesc("hc_engine_last_fetch_timestamp_seconds",
		"When configs were last fetched from the Engine; 0 before the first.",
		nil, nil)
)

// Describe is part of prometheus.Collector: EdgeStats exports itself.
func (s *EdgeStats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		callsDesc, callErrorsDesc, pendingDesc, unreachableDesc, lastFetchDesc,
	} {
		ch <- d
	}
}

// Collect is part of prometheus.Collector.
func (s *EdgeStats) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, method string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue,
			float64(v), method)
	}
	counter(callsDesc, s.Fetches.Load()+s.FetchErrors.Load(), "Healthchecks")
	counter(callErrorsDesc, s.FetchErrors.Load(), "Healthchecks")
	counter(callsDesc, s.HealthStates.Load(), "HealthState")
	counter(callErrorsDesc, s.HealthStateErr.Load(), "HealthState")
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue,
		float64(s.Pending.Load()))
	unreachable := 0.0
	if s.Unreachable.Load() {
		unreachable = 1
	}
	ch <- prometheus.MustNewConstMetric(unreachableDesc, prometheus.GaugeValue,
		unreachable)
	// Zero until the first good fetch: an Engine never reached looks as
	// old as can be.
	ch <- prometheus.MustNewConstMetric(lastFetchDesc, prometheus.GaugeValue,
		float64(s.LastFetch.Load())/1e9)
}

// Health returns the bridge's raw view of the Engine: Reachable is false
// only while MaxFailures or more HealthState calls in a row have failed.
// It knows nothing of fetches that fail or stop; Watch judges those too.
func (s *EdgeStats) Health() *messages.EngineHealth {
	h := &messages.EngineHealth{
		Reachable: !s.Unreachable.Load(),
		Pending:   s.Pending.Load(),
	}
	if !h.Reachable {
		h.Problem = "HealthState calls keep failing (max_failures in a row)"
	}
	if ns := s.LastFetch.Load(); ns != 0 {
		last := time.Unix(0, ns)
		h.LastFetch = &last
		h.LastFetchAge = time.Since(last).Seconds()
	}
	return h
}

// minStaleFetches is the least number of fetch intervals without a good
// fetch that Watch calls a problem, so that one slow fetch is none.
const minStaleFetches = 2

// staleAfter is how long a bridge of cfg may go without a good fetch: a
// fetch is due FetchInterval after the last good one and is retried
// every RetryDelay, so by then MaxFailures attempts in a row have failed
// or one has hung. It is never under minStaleFetches intervals. Zero
// fields take their defaults.
func (cfg EdgeConfig) staleAfter() time.Duration {
	cfg.applyDefaults()
	return max(
		cfg.FetchInterval+time.Duration(cfg.MaxFailures)*cfg.RetryDelay,
		minStaleFetches*cfg.FetchInterval)
}

// Watch returns a function for /healthz that reports the Engine as the
// bridge updating s sees it, judged by the bridge's timing in cfg (its
// other fields are not used), from now on as the bridge's start. The
// Engine is unreachable, with the reason in Problem, when
//
//   - MaxFailures HealthState calls in a row have failed (see Health);
//   - no fetch has succeeded since the bridge started, longer ago than
//     the limit: FetchInterval + MaxFailures × RetryDelay, but at least
//     two fetch intervals (35s with the defaults);
//   - or the last good fetch is older than that limit: fetches keep
//     failing, or one hangs.
//
// The function is safe for concurrent use.
func (s *EdgeStats) Watch(cfg EdgeConfig) func() *messages.EngineHealth {
	started, limit := time.Now(), cfg.staleAfter()
	return func() *messages.EngineHealth {
		return s.judge(limit, started, time.Now())
	}
}

// judge returns the Engine's health at now for a bridge that started at
// started and may go limit without a good fetch.
func (s *EdgeStats) judge(limit time.Duration, started,
	now time.Time) *messages.EngineHealth {
	h := s.Health()
	if h.LastFetch != nil {
		h.LastFetchAge = now.Sub(*h.LastFetch).Seconds()
	}
	if !h.Reachable {
		return h
	}
	failed := s.FetchErrors.Load()
	switch {
	case h.LastFetch == nil && now.Sub(started) > limit:
		h.Problem = fmt.Sprintf("no good config fetch in the %s since "+
			"the bridge started (limit %s); %d failed",
			round(now.Sub(started)), round(limit), failed)
	case h.LastFetch != nil && now.Sub(*h.LastFetch) > limit:
		h.Problem = fmt.Sprintf("last good config fetch %s ago (limit "+
			"%s); %d fetches failed in all",
			round(now.Sub(*h.LastFetch)), round(limit), failed)
	default:
		return h
	}
	h.Reachable = false
	return h
}

// round rounds d for a problem's text: to the second, or to the
// millisecond under ten seconds.
func round(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}
