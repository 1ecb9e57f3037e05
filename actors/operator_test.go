package actors

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

func TestOperatorHandler(t *testing.T) {
	probers := newFakeProbers()
	probers.setFail(2, true)
	mcfg := DefaultManagerConfig()
	mcfg.NewProber = probers.newProber
	mcfg.NotifierStats = &NotifierStats{}
	mcfg.Logger = testLogger(t)
	svc, err := Start(ServiceConfig{Manager: mcfg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Error(err)
		}
	}()
	srv := httptest.NewServer(svc.OperatorHandler(OperatorStats{
		Notifier: mcfg.NotifierStats, Proxy: &ProxyStats{}, Faults: &FaultStats{},
	}))
	defer srv.Close()

	svc.System().Root.Send(svc.Manager(), &messages.UpdateConfigs{
		Configs: configs([]uint64{1, 2}, 10*time.Millisecond),
	})
	waitFor(t, "both checks to have a state", func() bool {
		var rep messages.StatusReport
		get(t, srv.URL+"/status", http.StatusOK, &rep)
		return len(rep.Checks) == 2 &&
			rep.Checks[0].Status.State == messages.StateHealthy &&
			rep.Checks[1].Status.State == messages.StateUnhealthy
	})

	var one messages.CheckReport
	get(t, srv.URL+"/status/2", http.StatusOK, &one)
	if one.ID != 2 || one.Status.State != messages.StateUnhealthy ||
		one.Checker != messages.CheckerTCP || one.Target != "127.0.0.1:9" ||
		one.Since == nil || one.Interval != "10ms" {
		t.Errorf("/status/2 = %+v, want check 2 unhealthy with its config", one)
	}

	var tree messages.TreeReport
	get(t, srv.URL+"/tree", http.StatusOK, &tree)
	kinds := make(map[string]int)
	for _, a := range tree.Actors {
		kinds[a.Kind]++
	}
	if kinds["root"] != 1 || kinds["manager"] != 1 || kinds["notifier"] != 1 ||
		kinds["check"] != 2 {
		t.Errorf("/tree kinds = %v, want a root, a manager, a notifier, 2 checks",
			kinds)
	}
	get(t, srv.URL+"/status/3", http.StatusNotFound, nil)
	get(t, srv.URL+"/status/x", http.StatusBadRequest, nil)

	var health messages.HealthReport
	get(t, srv.URL+"/healthz", http.StatusOK, &health)
	if health.Status != "ok" || health.Checks != 2 {
		t.Errorf("/healthz = %+v, want ok with 2 checks", health)
	}

	metrics := getText(t, srv.URL+"/metrics")
	for _, want := range []string{
		`hc_checks{state="healthy"} 1`,
		`hc_checks{state="unhealthy"} 1`,
		`hc_notifications_total{outcome="queued"}`,
		`hc_proxy_clients 0`,
		`hc_supervisor_restarts_total{kind="check"} 0`,
		`hc_checks_configured{checker="tcp"} 2`,
		`hc_probes_total{checker="tcp",result="success"}`,
		`hc_probes_total{checker="tcp",result="failure"}`,
		`hc_state_transitions_total{from="unknown",to="healthy"} 1`,
		`hc_actor_messages_total{kind="check",message="actors.probeTick"}`,
		`hc_actor_receive_duration_seconds_count{kind="manager"}`,
		`hc_actor_lifecycle_total{event="spawn",kind="check"} 2`,
		`hc_actor_mailbox_depth{kind="check"}`,
		`hc_notification_batch_size_count`,
		`hc_faults_injected_total{fault="panic"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
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

func getText(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
