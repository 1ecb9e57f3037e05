package actors

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lbhealth/hcsupervisor/messages"
)

// operatorTimeout bounds how long an operator request waits for the
// manager.
const operatorTimeout = 5 * time.Second

// OperatorStats are the counters the operator listener exports.
type OperatorStats struct {
	Notifier *NotifierStats
	Proxy    *ProxyStats
	Faults   *FaultStats
}

// OperatorHandler serves the operators' HTTP endpoints for a running
// service: /healthz (the supervisor answers), /status and /status/{id}
// (JSON, per check) and /metrics (Prometheus text format, with no per-check
// labels).
func (s *Service) OperatorHandler(stats OperatorStats) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.serveHealthz)
	mux.HandleFunc("GET /status", s.serveStatus)
	mux.HandleFunc("GET /status/{id}", s.serveCheckStatus)
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStatsCollector(s, stats),
	)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	}))
	return mux
}

// statuses asks the manager for every check's status.
func (s *Service) statuses() (*messages.StatusResponse, error) {
	res, err := s.sys.Root.RequestFuture(s.Manager(), &messages.RequestStatus{},
		operatorTimeout).Result()
	if err != nil {
		return nil, err
	}
	sr, ok := res.(*messages.StatusResponse)
	if !ok {
		return nil, errors.New("manager answered with an unexpected message")
	}
	return sr, nil
}

func (s *Service) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	sr, err := s.statuses()
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable,
			map[string]string{"status": "manager not answering: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK,
		map[string]any{"status": "ok", "checks": len(sr.Statuses)})
}

func (s *Service) serveStatus(w http.ResponseWriter, _ *http.Request) {
	sr, err := s.statuses()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, sr)
}

func (s *Service) serveCheckStatus(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "id: not a check id", http.StatusBadRequest)
		return
	}
	sr, err := s.statuses()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	for _, cs := range sr.Statuses {
		if cs.ID == id {
			writeJSON(w, http.StatusOK, cs)
			return
		}
	}
	http.Error(w, "no check with id "+r.PathValue("id"), http.StatusNotFound)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// statsCollector exports the service's counters at scrape time.
type statsCollector struct {
	svc   *Service
	stats OperatorStats

	checks   *prometheus.Desc
	notes    *prometheus.Desc
	proxy    *prometheus.Desc
	client   *prometheus.Desc
	restarts *prometheus.Desc
	injected *prometheus.Desc
}

func newStatsCollector(svc *Service, stats OperatorStats) *statsCollector {
	return &statsCollector{
		svc:   svc,
		stats: stats,
		checks: prometheus.NewDesc("hc_checks",
			"Configured checks by state.", []string{"state"}, nil),
		notes: prometheus.NewDesc("hc_notifications_total",
			"Notifications by what the notifier did with them.",
			[]string{"outcome"}, nil),
		proxy: prometheus.NewDesc("hc_proxy_lines_total",
			"Lines to socket clients that went wrong, by reason.",
			[]string{"reason"}, nil),
		client: prometheus.NewDesc("hc_proxy_clients",
			"Socket clients connected.", nil, nil),
		restarts: prometheus.NewDesc("hc_actor_restarts_total",
			"Actor restarts after crashes, by kind of actor.",
			[]string{"kind"}, nil),
		injected: prometheus.NewDesc("hc_faults_injected_total",
			"Faults injected, by kind.", []string{"fault"}, nil),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.checks
	ch <- c.notes
	ch <- c.proxy
	ch <- c.client
	ch <- c.restarts
	ch <- c.injected
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	if sr, err := c.svc.statuses(); err == nil {
		counts := make(map[messages.State]int)
		for _, cs := range sr.Statuses {
			counts[cs.Status.State]++
		}
		for _, st := range []messages.State{messages.StateUnknown,
			messages.StateHealthy, messages.StateUnhealthy} {
			ch <- prometheus.MustNewConstMetric(c.checks, prometheus.GaugeValue,
				float64(counts[st]), st.String())
		}
	}
	if n := c.stats.Notifier; n != nil {
		for outcome, v := range map[string]uint64{
			"queued":      n.Queued.Load(),
			"coalesced":   n.Coalesced.Load(),
			"sent":        n.Sent.Load(),
			"undelivered": n.Undelivered.Load(),
		} {
			ch <- prometheus.MustNewConstMetric(c.notes, prometheus.CounterValue,
				float64(v), outcome)
		}
	}
	if f := c.stats.Faults; f != nil {
		ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue,
			float64(f.CheckRestarts.Load()), "check")
		ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue,
			float64(f.SingletonRestarts.Load()), "singleton")
		for _, kind := range messages.Faults {
			ch <- prometheus.MustNewConstMetric(c.injected, prometheus.CounterValue,
				float64(f.Injected(kind)), string(kind))
		}
	}
	if p := c.stats.Proxy; p != nil {
		ch <- prometheus.MustNewConstMetric(c.proxy, prometheus.CounterValue,
			float64(p.LinesRejected.Load()), "rejected")
		ch <- prometheus.MustNewConstMetric(c.proxy, prometheus.CounterValue,
			float64(p.LinesDropped.Load()), "dropped")
		ch <- prometheus.MustNewConstMetric(c.client, prometheus.GaugeValue,
			float64(p.Clients.Load()))
	}
}
