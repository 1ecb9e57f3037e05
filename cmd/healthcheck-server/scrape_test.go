package main

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
)

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
			labels: []string{"kind", "check", "message", "messages.RequestStatus"}},
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
