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
		var sr messages.StatusResponse
		get(t, srv.URL+"/status", http.StatusOK, &sr)
		return len(sr.Statuses) == 2 &&
			sr.Statuses[0].Status.State == messages.StateHealthy &&
			sr.Statuses[1].Status.State == messages.StateUnhealthy
	})

	var one messages.CheckStatus
	get(t, srv.URL+"/status/2", http.StatusOK, &one)
	if one.ID != 2 || one.Status.State != messages.StateUnhealthy {
		t.Errorf("/status/2 = %+v, want check 2 unhealthy", one)
	}
	get(t, srv.URL+"/status/3", http.StatusNotFound, nil)
	get(t, srv.URL+"/status/x", http.StatusBadRequest, nil)

	var health map[string]any
	get(t, srv.URL+"/healthz", http.StatusOK, &health)
	if health["status"] != "ok" || health["checks"] != float64(2) {
		t.Errorf("/healthz = %v, want ok with 2 checks", health)
	}

	metrics := getText(t, srv.URL+"/metrics")
	for _, want := range []string{
		`hc_checks{state="healthy"} 1`,
		`hc_checks{state="unhealthy"} 1`,
		`hc_notifications_total{outcome="queued"}`,
		`hc_proxy_clients 0`,
		`hc_actor_restarts_total{kind="check"} 0`,
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
