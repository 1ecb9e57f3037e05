package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
)

// dashboardFile is the Grafana dashboard that README tells operators to
// import.
const dashboardFile = "grafana-dashboard.json"

// dashboardDatasource is the datasource input Grafana asks for on import.
const dashboardDatasource = "${DS_PROMETHEUS}"

// pollTimeout bounds every wait for the scripted run to reach a state.
const pollTimeout = 10 * time.Second

var (
	// metricName finds the names of our metrics, the actor library's and
	// the process collectors' in a PromQL expression.
	metricName = regexp.MustCompile(
		`(?:^|[^\w:])((?:hc|protoactor|process|go)_\w+)`)
	// selector finds a metric name with its label matchers.
	selector = regexp.MustCompile(
		`((?:hc|protoactor|process|go)_\w+)\s*\{([^}]*)\}`)
	// matcher finds one label matcher inside a selector's braces.
	matcher = regexp.MustCompile(`(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	// grouping finds the labels of a by or without clause.
	grouping = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	SchemaVersion int `json:"schemaVersion"`
	Inputs        []struct {
		Name     string `json:"name"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string      `json:"name"`
			Datasource *datasource `json:"datasource"`
			Definition string      `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

// panel is a dashboard panel; a row holds its panels when collapsed.
type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Datasource *datasource `json:"datasource"`
		Expr       string      `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// query is one PromQL expression of the dashboard and where it is.
type query struct {
	where string
	expr  string
	// target is false for a template variable's query.
	target bool
}

func loadDashboard(t *testing.T) *dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// flatPanels returns the dashboard's panels with those of collapsed rows.
func (d *dashboard) flatPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// queries returns every PromQL expression: the panels' targets and the
// template variables' queries.
func (d *dashboard) queries() []query {
	var out []query
	for _, p := range d.flatPanels() {
		for _, tg := range p.Targets {
			out = append(out, query{where: p.Title, expr: tg.Expr, target: true})
		}
	}
	for _, v := range d.Templating.List {
		out = append(out, query{where: "$" + v.Name, expr: v.Definition})
	}
	return out
}

// metricNames returns the metric names expr uses.
func metricNames(expr string) []string {
	var names []string
	for _, m := range metricName.FindAllStringSubmatch(expr, -1) {
		if !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	return names
}

func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion = %d, want 39 or later", d.SchemaVersion)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" ||
		d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs = %+v, want one prometheus input DS_PROMETHEUS", d.Inputs)
	}
	for _, v := range d.Templating.List {
		if v.Datasource == nil || v.Datasource.UID != dashboardDatasource {
			t.Errorf("variable %s: datasource = %+v, want uid %s",
				v.Name, v.Datasource, dashboardDatasource)
		}
	}

	ids := make(map[int]string)
	for _, p := range d.flatPanels() {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panel %q: id %d already used by %q", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		checkPanel(t, p)
	}
	for _, q := range d.queries() {
		if q.target {
			checkExpr(t, q)
		}
	}
}

// checkPanel checks that a panel that shows data queries the dashboard's
// datasource.
func checkPanel(t *testing.T, p panel) {
	t.Helper()
	if p.Type == "row" || p.Type == "text" {
		return
	}
	if len(p.Targets) == 0 {
		t.Errorf("panel %q: no targets", p.Title)
	}
	if p.Datasource == nil || p.Datasource.UID != dashboardDatasource {
		t.Errorf("panel %q: datasource = %+v, want uid %s",
			p.Title, p.Datasource, dashboardDatasource)
	}
	for _, tg := range p.Targets {
		if tg.Datasource == nil || tg.Datasource.UID != dashboardDatasource {
			t.Errorf("panel %q: target datasource = %+v, want uid %s",
				p.Title, tg.Datasource, dashboardDatasource)
		}
	}
}

// checkExpr checks that a target's expression is balanced, uses some
// metric, follows the $job and $instance variables, and has no per-check
// label.
func checkExpr(t *testing.T, q query) {
	t.Helper()
	for _, pair := range []string{"()", "{}", "[]"} {
		if strings.Count(q.expr, pair[:1]) != strings.Count(q.expr, pair[1:]) {
			t.Errorf("panel %q: unbalanced %s in %s", q.where, pair, q.expr)
		}
	}
	if len(metricNames(q.expr)) == 0 {
		t.Errorf("panel %q: %s uses none of our metrics", q.where, q.expr)
	}
	// Every use of a metric is a selector, to carry the variables.
	for _, m := range metricName.FindAllStringSubmatchIndex(q.expr, -1) {
		if !strings.HasPrefix(q.expr[m[3]:], "{") {
			t.Errorf("panel %q: %s without the $job and $instance matchers",
				q.where, q.expr[m[2]:m[3]])
		}
	}
	for _, s := range selector.FindAllStringSubmatch(q.expr, -1) {
		if !strings.Contains(s[2], `job=~"$job"`) ||
			!strings.Contains(s[2], `instance=~"$instance"`) {
			t.Errorf("panel %q: %s{%s} lacks the $job and $instance matchers",
				q.where, s[1], s[2])
		}
		for _, m := range matcher.FindAllStringSubmatch(s[2], -1) {
			if m[1] == "id" {
				t.Errorf("panel %q: %s matches a per-check label", q.where, s[1])
			}
		}
	}
}

// TestDashboardMetricsExist runs a real server through a scripted run
// (a healthy and an unhealthy check sent by a socket client with an
// invalid config and a malformed line, the real Engine bridge against a
// simulated Engine that fails one HealthState call, two notifications
// that coalesce, a dead letter, an injected crash, a removed check) with
// the actor library's metrics on, as -actor_lib_metrics does. It checks
// every metric, label and label value the dashboard uses against a
// scrape of /metrics, and the run's values against the scrape, the
// simulated Engine, /status and /tree.
func TestDashboardMetricsExist(t *testing.T) {
	queries := loadDashboard(t).queries()
	srv := startScripted(t)
	srv.configure(t)
	srv.failOneHealthState(t)

	srv.waitFor(t, "check 1 healthy and check 2 unhealthy", func() bool {
		rep := srv.status(t)
		return len(rep.Checks) == 2 &&
			rep.Checks[0].Status.State == messages.StateHealthy &&
			rep.Checks[1].Status.State == messages.StateUnhealthy
	})
	srv.coalesce(t)
	srv.crashCheck(t, 1)
	srv.waitFor(t, "check 1 restarted once, seen everywhere", func() bool {
		fams := srv.scrape(t)
		return srv.status(t).Checks[0].Status.Restarts == 1 &&
			srv.treeRestarts(t, "hc/manager/1") == 1 &&
			value(fams, "hc_supervisor_restarts_total", "kind", "check") == 1 &&
			value(fams, "hc_actor_lifecycle_total",
				"event", "restart", "kind", "check") == 1 &&
			value(fams, "hc_proxy_clients") == 1 &&
			value(fams, "protoactor_actor_restarted_count_total") >= 1
	})
	srv.waitIdle(t)

	fams := srv.scrape(t)
	checkDashboardMetrics(t, queries, fams)
	checkRunValues(t, fams)
	checkEngineCalls(t, fams, srv.sim.Counts())
	checkNotifications(t, fams)
	srv.checkHealthz(t)

	srv.removeCheck(t)
}

// checkDashboardMetrics checks that every metric the dashboard uses is in
// fams, with the labels it groups by and the label values it matches, and
// that the dashboard shows every hc_ metric.
func checkDashboardMetrics(t *testing.T, queries []query,
	fams map[string]*dto.MetricFamily) {
	t.Helper()
	used := make(map[string]bool)
	for _, q := range queries {
		var inExpr []*dto.MetricFamily
		for _, name := range metricNames(q.expr) {
			fam := family(fams, name)
			if fam == nil {
				t.Errorf("%s: %s is not in /metrics", q.where, name)
				continue
			}
			used[fam.GetName()] = true
			inExpr = append(inExpr, fam)
		}
		checkMatchers(t, q, fams)
		checkGrouping(t, q, inExpr)
	}
	for name := range fams {
		if strings.HasPrefix(name, "hc_") && !used[name] {
			t.Errorf("%s is in /metrics but on no panel of %s", name, dashboardFile)
		}
	}
}

// family returns the family of a metric name as PromQL sees it: a
// histogram's series end in _bucket, _sum and _count.
func family(fams map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	if fam, ok := fams[name]; ok {
		return fam
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		fam, ok := fams[base]
		if ok && (fam.GetType() == dto.MetricType_HISTOGRAM ||
			fam.GetType() == dto.MetricType_SUMMARY && suffix != "_bucket") {
			return fam
		}
	}
	return nil
}

// checkMatchers checks that every label an expression matches with = has
// the value it asks for on some series.
func checkMatchers(t *testing.T, q query, fams map[string]*dto.MetricFamily) {
	t.Helper()
	for _, s := range selector.FindAllStringSubmatch(q.expr, -1) {
		fam := family(fams, s[1])
		if fam == nil {
			continue
		}
		for _, m := range matcher.FindAllStringSubmatch(s[2], -1) {
			name, op, val := m[1], m[2], m[3]
			if name == "job" || name == "instance" || op != "=" {
				continue
			}
			if !hasLabel(fam, name, val) {
				t.Errorf("%s: no series of %s has %s=%q",
					q.where, fam.GetName(), name, val)
			}
		}
	}
}

// checkGrouping checks that every label an expression groups by is a
// label of one of its metrics.
func checkGrouping(t *testing.T, q query, inExpr []*dto.MetricFamily) {
	t.Helper()
	for _, g := range grouping.FindAllStringSubmatch(q.expr, -1) {
		for label := range strings.SplitSeq(g[1], ",") {
			label = strings.TrimSpace(label)
			if label == "" || label == "le" {
				continue
			}
			if !slices.ContainsFunc(inExpr, func(f *dto.MetricFamily) bool {
				return hasLabel(f, label, "")
			}) {
				t.Errorf("%s: groups by %s, which none of its metrics has",
					q.where, label)
			}
		}
	}
}

// hasLabel reports whether some series of fam has the label, with the
// value if it is not empty.
func hasLabel(fam *dto.MetricFamily, name, val string) bool {
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == name && (val == "" || l.GetValue() == val) {
				return true
			}
		}
	}
	return false
}

// value returns the sum of the series of a counter or gauge that have
// the given label pairs, or -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, pairs ...string) float64 {
	fam, ok := fams[name]
	if !ok {
		return -1
	}
	sum, found := 0.0, false
	for _, m := range fam.GetMetric() {
		if !labelsMatch(m, pairs) {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	if !found {
		return -1
	}
	return sum
}

func labelsMatch(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
			return l.GetName() == pairs[i] && l.GetValue() == pairs[i+1]
		}) {
			return false
		}
	}
	return true
}

// checkRunValues checks the scrape against what the scripted run did.
func checkRunValues(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	tests := []struct {
		name   string
		labels []string
		want   float64
		// atLeast accepts any value from want up.
		atLeast bool
	}{
		{name: "hc_checks", labels: []string{"state", "healthy"}, want: 1},
		{name: "hc_checks", labels: []string{"state", "unhealthy"}, want: 1},
		{name: "hc_checks", labels: []string{"state", "unknown"}, want: 0},
		{name: "hc_checks_configured", labels: []string{"checker", "tcp"}, want: 2},
		{name: "hc_actors", labels: []string{"kind", "check"}, want: 2},
		{name: "hc_probes_total", want: 1, atLeast: true,
			labels: []string{"checker", "tcp", "result", "success"}},
		{name: "hc_probes_total", want: 1, atLeast: true,
			labels: []string{"checker", "tcp", "result", "failure"}},
		{name: "hc_state_transitions_total", want: 1,
			labels: []string{"from", "unknown", "to", "healthy"}},
		{name: "hc_state_transitions_total", want: 1,
			labels: []string{"from", "unknown", "to", "unhealthy"}},
		{name: "hc_configs_rejected_total", labels: []string{"reason", "port"}, want: 1},
		{name: "hc_supervisor_restarts_total", labels: []string{"kind", "check"}, want: 1},
		{name: "hc_actor_lifecycle_total", want: 1,
			labels: []string{"event", "restart", "kind", "check"}},
		{name: "hc_actor_lifecycle_total", want: 1,
			labels: []string{"event", "failure", "kind", "check"}},
		{name: "hc_actor_lifecycle_total", want: 2,
			labels: []string{"event", "spawn", "kind", "check"}},
		{name: "hc_actor_lifecycle_total", want: 0,
			labels: []string{"event", "stop", "kind", "check"}},
		{name: "hc_faults_injected_total", labels: []string{"fault", "panic"}, want: 1},
		{name: "hc_actor_dead_letters_total", want: 1, atLeast: true,
			labels: []string{"message", "messages.RequestStatus"}},
		// One line for the invalid config, one for the malformed line.
		{name: "hc_proxy_lines_total", labels: []string{"reason", "rejected"},
			want: 2},
		{name: "hc_proxy_lines_total", labels: []string{"reason", "dropped"}},
		{name: "hc_proxy_clients", want: 1},
		{name: "hc_engine_unreachable", want: 0},
		{name: "hc_engine_pending_statuses", want: 0},
		{name: "protoactor_actor_failure_count_total", want: 1, atLeast: true},
		{name: "protoactor_actor_restarted_count_total", want: 1, atLeast: true},
		{name: "protoactor_deadletter_count_total", want: 1, atLeast: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.name, tt.labels), func(t *testing.T) {
			got := value(fams, tt.name, tt.labels...)
			switch {
			case tt.atLeast && got < tt.want:
				t.Errorf("got %v, want >= %v", got, tt.want)
			case !tt.atLeast && got != tt.want:
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if got := value(fams, "hc_engine_last_fetch_timestamp_seconds"); got <= 0 {
		t.Errorf("hc_engine_last_fetch_timestamp_seconds = %v, want the "+
			"first fetch's time", got)
	}
	for _, name := range []string{"hc_probe_duration_seconds",
		"hc_probe_start_lag_seconds", "hc_notification_batch_size",
		"hc_actor_receive_duration_seconds",
		"protoactor_actor_message_receive_duration_seconds"} {
		if n := sampleCount(fams, name); n == 0 {
			t.Errorf("%s: no observations, want some", name)
		}
	}
}

// checkEngineCalls checks the bridge's call counts per method against
// what the simulated Engine saw: one fetch, and every HealthState call,
// the one failed on purpose among them.
func checkEngineCalls(t *testing.T, fams map[string]*dto.MetricFamily,
	seen enginesim.Counts) {
	t.Helper()
	if seen.Healthchecks != 1 || seen.Errors != 1 || seen.HealthState < 2 {
		t.Errorf("the Engine saw %+v, want 1 Healthchecks, 2 or more "+
			"HealthState calls and 1 error", seen)
	}
	tests := []struct {
		name, method string
		want         uint64
	}{
		{"hc_engine_calls_total", "Healthchecks", 1},
		{"hc_engine_call_errors_total", "Healthchecks", 0},
		{"hc_engine_calls_total", "HealthState", seen.HealthState},
		{"hc_engine_call_errors_total", "HealthState", 1},
	}
	for _, tt := range tests {
		got := value(fams, tt.name, "method", tt.method)
		if got != float64(tt.want) {
			t.Errorf("%s{method=%q} = %v, want %d", tt.name, tt.method,
				got, tt.want)
		}
	}
}

// checkNotifications checks the notifier's counts with an empty batch:
// each notification queued was sent, coalesced or undelivered; batch
// sizes add up to those sent; the scripted pair coalesced.
func checkNotifications(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	n := func(outcome string) float64 {
		return value(fams, "hc_notifications_total", "outcome", outcome)
	}
	queued, sent := n("queued"), n("sent")
	coalesced, undelivered := n("coalesced"), n("undelivered")
	if queued != sent+coalesced+undelivered || queued < sent {
		t.Errorf("notifications queued %v, want sent %v + coalesced %v + "+
			"undelivered %v", queued, sent, coalesced, undelivered)
	}
	if coalesced < 1 || undelivered != 0 || sent < 3 {
		t.Errorf("notifications coalesced %v, undelivered %v, sent %v; "+
			"want 1 or more, 0, 3 or more", coalesced, undelivered, sent)
	}
	if got := histogramSum(fams, "hc_notification_batch_size"); got != sent {
		t.Errorf("hc_notification_batch_size_sum = %v, want %v, the "+
			"notifications sent", got, sent)
	}
}

// histogramSum returns the sum of a histogram's observations.
func histogramSum(fams map[string]*dto.MetricFamily, name string) float64 {
	var sum float64
	for _, m := range fams[name].GetMetric() {
		sum += m.GetHistogram().GetSampleSum()
	}
	return sum
}

// sampleCount returns how many observations a histogram holds.
func sampleCount(fams map[string]*dto.MetricFamily, name string) uint64 {
	var n uint64
	for _, m := range fams[name].GetMetric() {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

// scripted is a server started as main starts it, with an operators'
// listener, the Engine bridge against a simulated Engine and a socket
// client.
type scripted struct {
	svc    *actors.Service
	url    string
	sim    *enginesim.Server
	bridge *bridge.EdgeStats
	client net.Conn
	// ports holds the backend port of each check by ID.
	ports map[int]int
}

// scriptedRetry is the bridge's retry delay: long beside the few
// statements failOneHealthState needs to hold the retry back.
const scriptedRetry = 500 * time.Millisecond

// startScripted starts the server with the library's metrics, the
// socket proxy and the Engine bridge against a simulated Engine that
// serves no checks, waits for the bridge's one fetch (it fetches every
// hour), then connects a socket client.
func startScripted(t *testing.T) *scripted {
	t.Helper()
	// NOTE: warn, because the library logs throttled dead letters at
	// info from a goroutine of its own that may outlive the test.
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)

	tel := actors.NewTelemetry()
	libOpt, err := libraryMetrics(tel.Registry())
	if err != nil {
		t.Fatal(err)
	}
	// libraryMetrics set the global meter provider; later tests get none.
	t.Cleanup(func() { otel.SetMeterProvider(noop.NewMeterProvider()) })

	dir := shortTempDir(t)
	sim := startEngine(t, filepath.Join(dir, "engine"))
	stats, bridgeStats, edges := scriptedEdges(t, filepath.Join(dir, "s"),
		filepath.Join(dir, "engine"), logger)
	mcfg := actors.DefaultManagerConfig()
	mcfg.NotifierStats = stats.Notifier
	mcfg.FaultStats = stats.Faults
	// No periodic status: every notification is one the script made.
	mcfg.NotifyInterval = time.Hour
	mcfg.Logger = logger
	svc, err := actors.Start(actors.ServiceConfig{
		Manager:       mcfg,
		Edges:         edges,
		Logger:        logger,
		Telemetry:     tel,
		SystemOptions: []actor.ConfigOption{libOpt},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopService(t, svc) })
	httpSrv := httptest.NewServer(svc.OperatorHandler(stats))
	t.Cleanup(httpSrv.Close)

	s := &scripted{svc: svc, url: httpSrv.URL, sim: sim, bridge: bridgeStats}
	// The fetch, of no checks, must not undo the client's configs.
	s.waitFor(t, "the bridge's first fetch", func() bool {
		return s.bridge.Fetches.Load() == 1
	})
	s.client = connectClient(t, filepath.Join(dir, "s"))
	return s
}

// shortTempDir returns a directory for unix sockets, whose paths must be
// short, removed when the test ends.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startEngine starts a simulated Engine on sock, closed when the test
// ends.
func startEngine(t *testing.T, sock string) *enginesim.Server {
	t.Helper()
	sim := enginesim.New(enginesim.Config{})
	if err := sim.Listen(sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// scriptedEdges returns the socket proxy on sock and the Engine bridge
// of the Engine on engine, with the stats for them, as main builds them
// from its flags, and the bridge's own.
func scriptedEdges(t *testing.T, sock, engine string,
	logger zerolog.Logger) (actors.OperatorStats, *bridge.EdgeStats, []actors.Edge) {
	t.Helper()
	cfg := defaultConfig()
	cfg.proxySocket, cfg.engine = sock, engine
	cfg.fetchInterval, cfg.retryDelay = time.Hour, scriptedRetry
	stats := operatorStats(&cfg)
	edges, err := buildEdges(cfg, logger, stats.Proxy, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return stats, cfg.bridgeStats, edges
}

// stopService stops svc within stopTimeout.
func stopService(t *testing.T, svc *actors.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := svc.Stop(ctx); err != nil {
		t.Error(err)
	}
}

// configLine is an update_configs line of loopback TCP checks by ID and
// port.
func configLine(checks ...[2]int) string {
	const cfg = `{"id":%d,"interval":"50ms","timeout":"1s",` +
		`"checker_type":"tcp","ip":"127.0.0.1","port":%d}`
	var list []string
	for _, c := range checks {
		list = append(list, fmt.Sprintf(cfg, c[0], c[1]))
	}
	return `{"type":"update_configs","configs":[` +
		strings.Join(list, ",") + "]}\n"
}

// configure has the socket client send a healthy check, an unhealthy
// one and an invalid config, then a malformed line, and sends a message
// to an actor that does not exist. The Engine answers the first
// HealthState call with an error; see failOneHealthState.
func (s *scripted) configure(t *testing.T) {
	t.Helper()
	s.sim.SetHang(true)
	s.sim.SetHealthStateError("injected: engine busy")

	up, refused := loopbackBackends(t)
	s.ports = map[int]int{1: up, 2: refused}
	s.send(t, configLine([2]int{1, up}, [2]int{2, refused}, [2]int{3, 0}))
	s.send(t, `{"type":"update_configs","configs":[`+"\n")
	sys := s.svc.System()
	sys.Root.Send(actor.NewPID(sys.Address(), "hc/nobody"), &messages.RequestStatus{})
}

// send writes a line as the socket client.
func (s *scripted) send(t *testing.T, line string) {
	t.Helper()
	s.client.SetWriteDeadline(time.Now().Add(pollTimeout))
	if _, err := io.WriteString(s.client, line); err != nil {
		t.Fatalf("writing %q: %v", line, err)
	}
}

// failOneHealthState makes the Engine fail exactly one HealthState call,
// the first, and answer the rest. The first call hangs until released
// with the error set; the bridge's retry, scriptedRetry later, finds
// the Engine hanging again, and is released once the error is cleared.
func (s *scripted) failOneHealthState(t *testing.T) {
	t.Helper()
	s.waitEngine(t, "the first HealthState call held", func(c *enginesim.Snapshot) bool {
		return c.Counts.Hung == 1
	})
	s.sim.SetHang(false)
	s.sim.SetHang(true)
	s.waitEngine(t, "the first call failed and the retry held", func(c *enginesim.Snapshot) bool {
		return c.Counts.Errors == 1 && c.Counts.Hung == 2
	})
	s.sim.SetHealthStateError("")
	s.sim.SetHang(false)
}

// waitEngine waits until the simulated Engine's state satisfies cond.
func (s *scripted) waitEngine(t *testing.T, what string,
	cond func(*enginesim.Snapshot) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	err := s.sim.WaitFor(ctx, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v; the Engine saw %+v", what, err,
			s.sim.Counts())
	}
}

// coalesce sends the notifier two statuses of one check in one batch,
// of which it must send only the newer.
func (s *scripted) coalesce(t *testing.T) {
	t.Helper()
	at := time.Now()
	older := messages.CheckStatus{ID: 99, Status: messages.Status{
		State: messages.StateHealthy, LastCheck: at, Message: "older",
	}}
	newer := older
	newer.Status.LastCheck, newer.Status.Message = at.Add(time.Millisecond), "newer"
	sys := s.svc.System()
	sys.Root.Send(actor.NewPID(sys.Address(), "hc/manager/notifier"),
		&messages.NotificationBatch{
			Notifications: []messages.CheckStatus{older, newer},
		})
	var got []string
	s.waitEngine(t, "the coalesced status", func(snap *enginesim.Snapshot) bool {
		got = got[:0]
		for _, r := range snap.Received {
			if r.Notification.Id == 99 {
				got = append(got, r.Notification.Status.Message)
			}
		}
		return len(got) > 0
	})
	if !slices.Equal(got, []string{"newer"}) {
		t.Errorf("the Engine got %q for check 99, want only the newer", got)
	}
}

// waitIdle waits until the bridge has told the Engine everything, the
// notifier holds nothing and every mailbox is empty.
func (s *scripted) waitIdle(t *testing.T) {
	t.Helper()
	s.waitFor(t, "the run to settle", func() bool {
		fams := s.scrape(t)
		n := func(outcome string) float64 {
			return value(fams, "hc_notifications_total", "outcome", outcome)
		}
		seen := s.sim.Counts()
		return s.bridge.Pending.Load() == 0 &&
			s.bridge.HealthStates.Load() == seen.HealthState &&
			n("queued") == n("sent")+n("coalesced")+n("undelivered") &&
			value(fams, "hc_actor_mailbox_depth") == 0
	})
}

// checkHealthz checks that /healthz is ok with the Engine reachable.
func (s *scripted) checkHealthz(t *testing.T) {
	t.Helper()
	var rep messages.HealthReport
	s.getJSON(t, "/healthz", &rep)
	if rep.Status != "ok" || len(rep.Problems) != 0 || rep.Checks != 2 ||
		rep.Clients != 1 || rep.LastUpdate == nil {
		t.Errorf("/healthz = %+v, want ok, 2 checks, 1 client, an update", rep)
	}
	if e := rep.Engine; e == nil || !e.Reachable || e.LastFetch == nil ||
		e.Problem != "" || e.Pending != 0 {
		t.Errorf("/healthz engine = %+v, want reachable after a fetch", e)
	}
}

// removeCheck has the client send the configs without check 2 and
// checks that its actor stopped, counted once as a stop and not as a
// spawn.
func (s *scripted) removeCheck(t *testing.T) {
	t.Helper()
	s.send(t, configLine([2]int{1, s.ports[1]}))
	s.waitFor(t, "the check's stop", func() bool {
		return value(s.scrape(t), "hc_actor_lifecycle_total",
			"event", "stop", "kind", "check") == 1
	})
	fams := s.scrape(t)
	for _, tt := range []struct {
		event string
		want  float64
	}{{"spawn", 2}, {"stop", 1}, {"restart", 1}} {
		got := value(fams, "hc_actor_lifecycle_total", "event", tt.event,
			"kind", "check")
		if got != tt.want {
			t.Errorf("hc_actor_lifecycle_total{event=%q,kind=\"check\"} = %v, "+
				"want %v", tt.event, got, tt.want)
		}
	}
	if got := value(fams, "hc_actors", "kind", "check"); got != 1 {
		t.Errorf("hc_actors{kind=\"check\"} = %v, want 1", got)
	}
}

// loopbackBackends returns the port of a TCP listener that accepts, and
// a port nothing listens on.
func loopbackBackends(t *testing.T) (up, refused int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})

	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone.Close()
	return ln.Addr().(*net.TCPAddr).Port, gone.Addr().(*net.TCPAddr).Port
}

// connectClient connects a socket client that stays until the test
// ends, and reads its ready line.
func connectClient(t *testing.T, sock string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("unix", sock, pollTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(pollTimeout))
	buf := make([]byte, len(`{"type":"ready"}`)+1)
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatalf("reading the ready line: %v", err)
	}
	return conn
}

// crashCheck injects one panic into check id.
func (s *scripted) crashCheck(t *testing.T, id uint64) {
	t.Helper()
	res, err := s.svc.System().Root.RequestFuture(s.svc.Manager(),
		&messages.InjectFault{ID: id, Fault: messages.FaultPanic, Count: 1},
		pollTimeout).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.(*messages.Ack); !ok {
		t.Fatalf("inject_fault answered %#v, want an ack", res)
	}
}

// waitFor polls cond until it holds or pollTimeout passes.
func (s *scripted) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *scripted) status(t *testing.T) *messages.StatusReport {
	t.Helper()
	var rep messages.StatusReport
	s.getJSON(t, "/status", &rep)
	return &rep
}

// treeRestarts returns the restarts /tree shows for an actor, or -1 when
// it is not in the tree.
func (s *scripted) treeRestarts(t *testing.T, id string) int64 {
	t.Helper()
	var rep messages.TreeReport
	s.getJSON(t, "/tree", &rep)
	for _, a := range rep.Actors {
		if a.ID == id {
			if a.Kind != "check" {
				t.Fatalf("/tree: %s is a %s, want a check", id, a.Kind)
			}
			return int64(a.Restarts)
		}
	}
	return -1
}

func (s *scripted) getJSON(t *testing.T, path string, into any) {
	t.Helper()
	res, err := http.Get(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200", path, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(into); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// scrape returns /metrics by metric family name.
func (s *scripted) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(s.url + "/metrics")
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

// TestHealthzEngineUnreachable checks /healthz against the real bridge
// and a simulated Engine whose fetches fail: degraded while no fetch has
// succeeded for longer than the limit since the start, ok once one
// does, degraded again when fetches keep failing after it.
func TestHealthzEngineUnreachable(t *testing.T) {
	// The bridge warns of every failed fetch, each 50ms.
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)
	sock := filepath.Join(shortTempDir(t), "engine")
	sim := startEngine(t, sock)
	sim.SetHealthchecksError("injected: engine down")

	// The limit: the longer of 200ms + 3 × 50ms and two intervals.
	cfg := defaultConfig()
	cfg.engine = sock
	cfg.fetchInterval, cfg.retryDelay = 200*time.Millisecond, 50*time.Millisecond
	cfg.maxFailures = 3
	stats := operatorStats(&cfg)
	mcfg := actors.DefaultManagerConfig()
	mcfg.Logger = logger
	svc, err := actors.Start(actors.ServiceConfig{
		Manager: mcfg,
		Edges:   []actors.Edge{engineEdge(cfg, logger, nil)},
		Logger:  logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopService(t, svc) })
	httpSrv := httptest.NewServer(svc.OperatorHandler(stats))
	t.Cleanup(httpSrv.Close)
	s := &scripted{svc: svc, url: httpSrv.URL}

	s.waitHealthz(t, http.StatusServiceUnavailable,
		`^engine unreachable: no good config fetch in the [0-9.]+m?s `+
			`since the bridge started \(limit 400ms\); [0-9]+ failed$`)
	sim.SetHealthchecksError("")
	s.waitHealthz(t, http.StatusOK, "")
	sim.SetHealthchecksError("injected: engine down")
	s.waitHealthz(t, http.StatusServiceUnavailable,
		`^engine unreachable: last good config fetch [0-9.]+m?s ago `+
			`\(limit 400ms\); [0-9]+ fetches failed in all$`)
}

// waitHealthz waits until /healthz answers code, with one problem that
// matches the regular expression problem, or none and status ok when
// problem is empty.
func (s *scripted) waitHealthz(t *testing.T, code int, problem string) {
	t.Helper()
	re := regexp.MustCompile(problem)
	var last messages.HealthReport
	deadline := time.Now().Add(pollTimeout)
	for {
		got, rep := s.healthz(t)
		last = rep
		ok := got == code && (problem == "" && rep.Status == "ok" &&
			len(rep.Problems) == 0 && rep.Engine != nil && rep.Engine.Reachable ||
			problem != "" && rep.Status == "degraded" &&
				len(rep.Problems) == 1 && re.MatchString(rep.Problems[0]))
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz = %d %+v; want %d with problem %q", got,
				last, code, problem)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// healthz returns /healthz's status code and report.
func (s *scripted) healthz(t *testing.T) (int, messages.HealthReport) {
	t.Helper()
	res, err := http.Get(s.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var rep messages.HealthReport
	if err := json.NewDecoder(res.Body).Decode(&rep); err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	return res.StatusCode, rep
}
