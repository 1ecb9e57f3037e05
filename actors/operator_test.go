package actors

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lbhealth/hcsupervisor/messages"
)

// operatorServer is a running service with its operators' handler on a
// loopback listener.
type operatorServer struct {
	svc     *Service
	url     string
	probers *fakeProbers
	stats   OperatorStats
}

// startOperator starts a service with fake probers and serves its
// operators' handler with stats. Stats' nil fields get defaults, which
// the manager's config shares; tune then adjusts that config.
func startOperator(t *testing.T, stats OperatorStats,
	tune func(*ManagerConfig)) *operatorServer {
	t.Helper()
	probers := newFakeProbers()
	if stats.Notifier == nil {
		stats.Notifier = &NotifierStats{}
	}
	if stats.Proxy == nil {
		stats.Proxy = &ProxyStats{}
	}
	if stats.Faults == nil {
		stats.Faults = &FaultStats{}
	}
	mcfg := DefaultManagerConfig()
	mcfg.NewProber = probers.newProber
	mcfg.NotifierStats = stats.Notifier
	mcfg.FaultStats = stats.Faults
	mcfg.Logger = testLogger(t)
	if tune != nil {
		tune(&mcfg)
	}
	svc := startService(t, mcfg)
	srv := httptest.NewServer(svc.OperatorHandler(stats))
	t.Cleanup(srv.Close)
	return &operatorServer{svc: svc, url: srv.URL, probers: probers, stats: stats}
}

func (o *operatorServer) update(cfgs ...messages.Config) {
	o.svc.System().Root.Send(o.svc.Manager(), &messages.UpdateConfigs{Configs: cfgs})
}

func (o *operatorServer) status(t *testing.T) *messages.StatusReport {
	t.Helper()
	var rep messages.StatusReport
	get(t, o.url+"/status", http.StatusOK, &rep)
	return &rep
}

func TestOperatorHandler(t *testing.T) {
	o := startOperator(t, OperatorStats{}, nil)
	o.probers.setFail(2, true)
	o.update(configs([]uint64{1, 2}, 10*time.Millisecond)...)
	waitFor(t, "both checks to have a state", func() bool {
		rep := o.status(t)
		return len(rep.Checks) == 2 &&
			rep.Checks[0].Status.State == messages.StateHealthy &&
			rep.Checks[1].Status.State == messages.StateUnhealthy
	})

	var one messages.CheckReport
	get(t, o.url+"/status/2", http.StatusOK, &one)
	if one.ID != 2 || one.Status.State != messages.StateUnhealthy ||
		one.Checker != messages.CheckerTCP || one.Target != "127.0.0.1:9" ||
		one.Since == nil || one.Interval != "10ms" {
		t.Errorf("/status/2 = %+v, want check 2 unhealthy with its config", one)
	}

	var tree messages.TreeReport
	get(t, o.url+"/tree", http.StatusOK, &tree)
	kinds := make(map[string]int)
	for _, a := range tree.Actors {
		kinds[a.Kind]++
	}
	if want := map[string]int{"root": 1, "manager": 1, "notifier": 1,
		"check": 2}; !maps.Equal(kinds, want) {
		t.Errorf("/tree kinds = %v, want %v", kinds, want)
	}
	get(t, o.url+"/status/3", http.StatusNotFound, nil)
	get(t, o.url+"/status/x", http.StatusBadRequest, nil)

	var health messages.HealthReport
	get(t, o.url+"/healthz", http.StatusOK, &health)
	if health.Status != "ok" || health.Checks != 2 || len(health.Problems) != 0 {
		t.Errorf("/healthz = %+v, want ok with 2 checks", health)
	}
	checkMetrics(t, scrape(t, o.url), []metricWant{
		{name: "hc_checks", labels: []string{"state", "healthy"}, want: 1},
		{name: "hc_checks", labels: []string{"state", "unhealthy"}, want: 1},
		{name: "hc_checks", labels: []string{"state", "unknown"}, want: 0},
		{name: "hc_proxy_clients", want: 0},
		{name: "hc_supervisor_restarts_total", labels: []string{"kind", "check"}},
		{name: "hc_supervisor_restarts_total", labels: []string{"kind", "singleton"}},
		{name: "hc_supervisor_restarts_total", labels: []string{"kind", "manager"}},
		{name: "hc_checks_configured", labels: []string{"checker", "tcp"}, want: 2},
		{name: "hc_state_transitions_total", want: 1,
			labels: []string{"from", "unknown", "to", "healthy"}},
		{name: "hc_state_transitions_total", want: 1,
			labels: []string{"from", "unknown", "to", "unhealthy"}},
		{name: "hc_actor_lifecycle_total", want: 2,
			labels: []string{"event", "spawn", "kind", "check"}},
		{name: "hc_actor_lifecycle_total",
			labels: []string{"event", "stop", "kind", "check"}},
		{name: "hc_actors", labels: []string{"kind", "check"}, want: 2},
		{name: "hc_faults_injected_total", labels: []string{"fault", "panic"}},
		{name: "hc_notifications_total", want: 2, atLeast: true,
			labels: []string{"outcome", "queued"}},
		{name: "hc_probes_total", want: 1, atLeast: true,
			labels: []string{"checker", "tcp", "result", "success"}},
		{name: "hc_probes_total", want: 1, atLeast: true,
			labels: []string{"checker", "tcp", "result", "failure"}},
		{name: "hc_actor_messages_total", want: 1, atLeast: true,
			labels: []string{"kind", "check", "message", "actors.probeDone"}},
		{name: "hc_actor_mailbox_depth", labels: []string{"kind", "check"},
			atLeast: true},
		{name: "hc_actor_receive_duration_seconds", want: 1, atLeast: true,
			labels: []string{"kind", "manager"}},
		// Present; its first batch may still wait out the batch delay.
		{name: "hc_notification_batch_size", atLeast: true},
	})
}

// TestOperatorStatusAfterRestart checks that a check's restart shows in
// /status/{id} as restarts=1 while its state and since stay, that
// /healthz stays ok, and that the restart is counted once.
func TestOperatorStatusAfterRestart(t *testing.T) {
	o := startOperator(t, OperatorStats{}, fastRestarts)
	o.update(tcpConfig(1, 10*time.Millisecond))
	var before messages.CheckReport
	waitFor(t, "check 1 healthy", func() bool {
		get(t, o.url+"/status/1", http.StatusOK, &before)
		return before.Status.State == messages.StateHealthy
	})
	if before.Since == nil || before.Status.Restarts != 0 {
		t.Fatalf("/status/1 = %+v, want a since and no restarts", before)
	}

	res, err := o.svc.System().Root.RequestFuture(o.svc.Manager(),
		&messages.InjectFault{ID: 1, Fault: messages.FaultPanic, Count: 1},
		10*time.Second).Result()
	if _, ok := res.(*messages.Ack); err != nil || !ok {
		t.Fatalf("inject_fault = %#v, %v; want an ack", res, err)
	}
	var after messages.CheckReport
	waitFor(t, "the restart and a probe after it", func() bool {
		get(t, o.url+"/status/1", http.StatusOK, &after)
		return after.Status.Restarts == 1 &&
			after.Status.Successes > before.Status.Successes
	})
	if after.Status.State != messages.StateHealthy {
		t.Errorf("state after the restart = %v, want healthy", after.Status.State)
	}
	if after.Since == nil || !after.Since.Equal(*before.Since) {
		t.Errorf("since after the restart = %v, want %v as before",
			after.Since, before.Since)
	}

	var health messages.HealthReport
	get(t, o.url+"/healthz", http.StatusOK, &health)
	if health.Status != "ok" || len(health.Problems) != 0 || health.Checks != 1 {
		t.Errorf("/healthz after the restart = %+v, want ok with 1 check", health)
	}
	checkMetrics(t, scrape(t, o.url), []metricWant{
		{name: "hc_supervisor_restarts_total", labels: []string{"kind", "check"},
			want: 1},
		{name: "hc_actor_lifecycle_total", want: 1,
			labels: []string{"event", "restart", "kind", "check"}},
		{name: "hc_actor_lifecycle_total", want: 1,
			labels: []string{"event", "spawn", "kind", "check"}},
		{name: "hc_faults_injected_total", labels: []string{"fault", "panic"},
			want: 1},
		{name: "hc_state_transitions_total", want: 1,
			labels: []string{"from", "unknown", "to", "healthy"}},
	})
}

// TestHealthzEngine checks /healthz with the Engine bridge's view: 200
// while the Engine is reachable, 503 with the bridge's reason when not.
func TestHealthzEngine(t *testing.T) {
	fetched := time.Now().Add(-time.Hour)
	tests := []struct {
		name         string
		engine       messages.EngineHealth
		wantCode     int
		wantStatus   string
		wantProblems []string
	}{
		{"reachable", messages.EngineHealth{Reachable: true, Pending: 2},
			http.StatusOK, "ok", nil},
		{"stale fetch", messages.EngineHealth{
			Problem:   "last good config fetch 1h0m0s ago (limit 35s)",
			LastFetch: &fetched, LastFetchAge: 3600,
		}, http.StatusServiceUnavailable, "degraded", []string{
			"engine unreachable: last good config fetch 1h0m0s ago (limit 35s)",
		}},
		{"no reason", messages.EngineHealth{}, http.StatusServiceUnavailable,
			"degraded", []string{"engine unreachable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := startOperator(t, OperatorStats{
				Engine: func() *messages.EngineHealth {
					e := tt.engine
					return &e
				},
			}, nil)
			var rep messages.HealthReport
			get(t, o.url+"/healthz", tt.wantCode, &rep)
			if rep.Status != tt.wantStatus ||
				!slices.Equal(rep.Problems, tt.wantProblems) {
				t.Errorf("/healthz = %s %q, want %s %q", rep.Status,
					rep.Problems, tt.wantStatus, tt.wantProblems)
			}
			if rep.Engine == nil || rep.Engine.Reachable != tt.engine.Reachable ||
				rep.Engine.Problem != tt.engine.Problem ||
				rep.Engine.Pending != tt.engine.Pending {
				t.Errorf("/healthz engine = %+v, want %+v", rep.Engine, tt.engine)
			}
		})
	}
}

// TestHealthzSocketOnly checks /healthz without the Engine: no engine
// field, the clients connected, and when update_configs last arrived;
// no client connected is no problem (see serveHealthz).
func TestHealthzSocketOnly(t *testing.T) {
	o := startOperator(t, OperatorStats{}, nil)
	var rep messages.HealthReport
	get(t, o.url+"/healthz", http.StatusOK, &rep)
	if rep.Status != "ok" || rep.Engine != nil || rep.Clients != 0 ||
		rep.LastUpdate != nil || rep.LastUpdateAge != 0 {
		t.Errorf("/healthz before any update = %+v, want ok, no engine, "+
			"no client and no last update", rep)
	}

	sent := time.Now()
	o.update(tcpConfig(1, time.Hour))
	o.stats.Proxy.Clients.Store(2)
	waitFor(t, "the update to show", func() bool {
		rep = messages.HealthReport{}
		get(t, o.url+"/healthz", http.StatusOK, &rep)
		return rep.Checks == 1
	})
	if rep.LastUpdate == nil || rep.LastUpdate.Before(sent) ||
		rep.LastUpdate.After(time.Now()) {
		t.Errorf("last_update_configs = %v, want between %v and now",
			rep.LastUpdate, sent)
	}
	if age := time.Since(sent).Seconds(); rep.LastUpdateAge < 0 ||
		rep.LastUpdateAge > age {
		t.Errorf("last_update_configs_age_seconds = %v, want 0 to %v",
			rep.LastUpdateAge, age)
	}
	if rep.Status != "ok" || rep.Clients != 2 || len(rep.Problems) != 0 {
		t.Errorf("/healthz = %+v, want ok with 2 clients", rep)
	}

	o.stats.Proxy.Clients.Store(0)
	rep = messages.HealthReport{}
	get(t, o.url+"/healthz", http.StatusOK, &rep)
	if rep.Status != "ok" || rep.Clients != 0 {
		t.Errorf("/healthz with no client = %+v, want ok with 0 clients", rep)
	}
}

// metricWant is the value a scrape should have for one series.
type metricWant struct {
	name   string
	labels []string
	want   float64
	// atLeast accepts any value from want up, for counters that grow
	// while the test runs.
	atLeast bool
}

// checkMetrics compares each series of wants with fams.
func checkMetrics(t *testing.T, fams map[string]*dto.MetricFamily,
	wants []metricWant) {
	t.Helper()
	for _, w := range wants {
		got, ok := metricValue(fams, w.name, w.labels...)
		switch {
		case !ok:
			t.Errorf("%s%v: not in /metrics", w.name, w.labels)
		case w.atLeast && got < w.want:
			t.Errorf("%s%v = %v, want at least %v", w.name, w.labels, got, w.want)
		case !w.atLeast && got != w.want:
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
}

// scrape returns /metrics of the handler at url by family name.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d, want 200", res.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// metricValue returns the value of the one series of a counter or gauge,
// or the observation count of a histogram, with exactly the given label
// pairs.
func metricValue(fams map[string]*dto.MetricFamily, name string,
	pairs ...string) (float64, bool) {
	for _, m := range fams[name].GetMetric() {
		if len(m.GetLabel())*2 != len(pairs) || !hasPairs(m, pairs) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func hasPairs(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
			return l.GetName() == pairs[i] && l.GetValue() == pairs[i+1]
		}) {
			return false
		}
	}
	return true
}

func get(t *testing.T, url string, code int, into any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != code {
		t.Fatalf("GET %s: status %d, want %d", url, res.StatusCode, code)
	}
	if into != nil {
		if err := json.NewDecoder(res.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
}
