package actors

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lbhealth/hcsupervisor/messages"
)

// operatorTimeout bounds how long an operator request waits for the
// manager.
const operatorTimeout = 5 * time.Second

// OperatorStats are the counters the operator listener exports besides
// the service's Telemetry.
type OperatorStats struct {
	Notifier *NotifierStats
	Proxy    *ProxyStats
	Faults   *FaultStats
	// Extra collectors are exported too, such as the Engine bridge's.
	Extra []prometheus.Collector
	// Engine, if set, reports the Engine bridge's view for /healthz.
	Engine func() *messages.EngineHealth
}

// OperatorHandler serves the operators' HTTP endpoints for a running
// service: /healthz (the supervisor itself), /status and /status/{id}
// (every check, JSON), /tree (the live actor tree, JSON) and /metrics
// (Prometheus text format, with no per-check labels).
func (s *Service) OperatorHandler(stats OperatorStats) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		s.serveHealthz(w, stats)
	})
	mux.HandleFunc("GET /status", s.serveStatus)
	mux.HandleFunc("GET /status/{id}", s.serveCheckStatus)
	mux.HandleFunc("GET /tree", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.tel.Tree())
	})

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStatsCollector(stats),
	)
	reg.MustRegister(stats.Extra...)
	gatherers := prometheus.Gatherers{reg, s.tel.Registry()}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	}))
	return mux
}

// report asks the manager for every check as operators see it.
func (s *Service) report() (*messages.StatusReport, error) {
	res, err := s.sys.Root.RequestFuture(s.Manager(), &messages.RequestReport{},
		operatorTimeout).Result()
	if err != nil {
		return nil, err
	}
	rep, ok := res.(*messages.StatusReport)
	if !ok {
		return nil, errors.New("manager answered with an unexpected message")
	}
	return rep, nil
}

// serveHealthz answers /healthz: whether the supervisor itself works.
// It answers 200 with status "ok", or 503 with status "degraded" and one
// reason per problem in Problems. The problems are:
//
//   - the manager does not answer within operatorTimeout;
//   - with the Engine bridge in the process (stats.Engine set), the
//     Engine is unreachable as the bridge judges it (see bridge's
//     EdgeStats.Watch): HealthState calls keep failing, or no config
//     fetch has succeeded for too long, since start or since the last.
//
// The report also holds how many checks are configured, how many socket
// clients are connected, when update_configs last reached the manager
// and how long ago, and the probes' start lag.
//
// NOTE: without the Engine (socket-only, as in the split deployment), no
// client connected is not a problem, however long it lasts: there is
// none at start and while a client reconnects; the client, such as
// healthcheck-proxy, reports its own link on its own /healthz; and a
// liveness probe that failed on it would restart a server that works,
// which brings no client back. Operators alert on hc_proxy_clients == 0
// held for a while, or on the age of the last update_configs, instead.
func (s *Service) serveHealthz(w http.ResponseWriter, stats OperatorStats) {
	rep := messages.HealthReport{Status: "ok"}
	_, err := s.sys.Root.RequestFuture(s.Manager(), &actor.Touch{},
		operatorTimeout).Result()
	if err != nil {
		rep.Problems = append(rep.Problems, "manager not answering: "+err.Error())
	}
	rep.Checks = s.tel.checks()
	if stats.Proxy != nil {
		rep.Clients = stats.Proxy.Clients.Load()
	}
	if ns := s.tel.lastUpdate.Load(); ns != 0 {
		last := time.Unix(0, ns)
		rep.LastUpdate = &last
		rep.LastUpdateAge = time.Since(last).Seconds()
	}
	rep.StartLag = s.tel.startLag()
	if stats.Engine != nil {
		rep.Engine = stats.Engine()
		if !rep.Engine.Reachable {
			rep.Problems = append(rep.Problems,
				rep.Engine.UnreachableProblem())
		}
	}
	code := http.StatusOK
	if len(rep.Problems) > 0 {
		rep.Status = "degraded"
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rep)
}

func (s *Service) serveStatus(w http.ResponseWriter, _ *http.Request) {
	rep, err := s.report()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Service) serveCheckStatus(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "id: not a check id", http.StatusBadRequest)
		return
	}
	rep, err := s.report()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	i, found := slices.BinarySearchFunc(rep.Checks, id,
		func(c messages.CheckReport, id uint64) int { return cmp.Compare(c.ID, id) })
	if !found {
		http.Error(w, "no check with id "+r.PathValue("id"), http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, rep.Checks[i])
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// statsCollector exports the stats' counters at scrape time.
type statsCollector struct {
	stats OperatorStats

	notes    *prometheus.Desc
	proxy    *prometheus.Desc
	client   *prometheus.Desc
	restarts *prometheus.Desc
	injected *prometheus.Desc
}

func newStatsCollector(stats OperatorStats) *statsCollector {
	return &statsCollector{
		stats: stats,
		notes: prometheus.NewDesc("hc_notifications_total",
			"Notifications by what the notifier did with them.",
			[]string{"outcome"}, nil),
		proxy: prometheus.NewDesc("hc_proxy_lines_total",
			"Socket lines that went wrong, by reason: rejected (answered "+
				"with an error), dropped (a reply a slow client's backlog "+
				"could not hold), superseded (a notification a slow client "+
				"got only in its newer form), refused_connection.",
			[]string{"reason"}, nil),
		client: prometheus.NewDesc("hc_proxy_clients",
			"Socket clients connected.", nil, nil),
		restarts: prometheus.NewDesc("hc_supervisor_restarts_total",
			"Restarts ordered by the tree's supervisors: of checks, of "+
				"singletons, and resumes of the manager (kind manager).",
			[]string{"kind"}, nil),
		injected: prometheus.NewDesc("hc_faults_injected_total",
			"Faults injected, by kind.", []string{"fault"}, nil),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.notes
	ch <- c.proxy
	ch <- c.client
	ch <- c.restarts
	ch <- c.injected
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
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
		ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue,
			float64(f.ManagerResumes.Load()), "manager")
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
		ch <- prometheus.MustNewConstMetric(c.proxy, prometheus.CounterValue,
			float64(p.Superseded.Load()), "superseded")
		ch <- prometheus.MustNewConstMetric(c.proxy, prometheus.CounterValue,
			float64(p.Refused.Load()), "refused_connection")
		ch <- prometheus.MustNewConstMetric(c.client, prometheus.GaugeValue,
			float64(p.Clients.Load()))
	}
}
