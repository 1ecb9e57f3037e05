package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/lbhealth/hcsupervisor/messages"
)

// dashboardFile is the Grafana dashboard that README tells operators to
// import.
const dashboardFile = "grafana-dashboard.json"

// dashboardDatasource is the datasource input Grafana asks for on import.
const dashboardDatasource = "${DS_PROMETHEUS}"

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

	waitUntil(t, "check 1 healthy and check 2 unhealthy", func() bool {
		rep := srv.status(t)
		return len(rep.Checks) == 2 &&
			rep.Checks[0].Status.State == messages.StateHealthy &&
			rep.Checks[1].Status.State == messages.StateUnhealthy
	})
	srv.coalesce(t)
	srv.crashCheck(t, 1)
	waitUntil(t, "check 1 restarted once, seen everywhere", func() bool {
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
	checkNoCheckLabels(t, fams, 1, 2, 3)
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

// checkNoCheckLabels checks that no metric of fams tells checks apart:
// no label names a check or its target, no label value is one of the
// run's check IDs (bucket bounds aside), and no family has more than a
// bounded number of series.
func checkNoCheckLabels(t *testing.T, fams map[string]*dto.MetricFamily,
	ids ...uint64) {
	t.Helper()
	const maxSeries = 200
	perCheck := map[string]bool{"id": true, "check": true, "check_id": true,
		"target": true, "ip": true}
	idValues := make(map[string]bool)
	for _, id := range ids {
		idValues[strconv.FormatUint(id, 10)] = true
	}
	for name, fam := range fams {
		if n := len(fam.GetMetric()); n > maxSeries {
			t.Errorf("%s has %d series, want at most %d", name, n, maxSeries)
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				switch {
				case perCheck[l.GetName()]:
					t.Errorf("%s has a per-check label %s", name, l.GetName())
				case l.GetName() != "le" && l.GetName() != "quantile" &&
					idValues[l.GetValue()]:
					t.Errorf("%s{%s=%q} names a check's ID", name,
						l.GetName(), l.GetValue())
				}
			}
		}
	}
}
