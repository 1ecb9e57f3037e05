package bridge

import (
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
		"Statuses waiting for the Engine.", nil, nil)
	unreachableDesc = prometheus.NewDesc("hc_engine_unreachable",
		"1 while max_failures or more HealthState calls in a row failed.", nil, nil)
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

// Health returns the bridge's view of the Engine, for /healthz.
func (s *EdgeStats) Health() *messages.EngineHealth {
	h := &messages.EngineHealth{
		Reachable: !s.Unreachable.Load(),
		Pending:   s.Pending.Load(),
	}
	if ns := s.LastFetch.Load(); ns != 0 {
		last := time.Unix(0, ns)
		h.LastFetch = &last
		h.LastFetchAge = time.Since(last).Seconds()
	}
	return h
}
