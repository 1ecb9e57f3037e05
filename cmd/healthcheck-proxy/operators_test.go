package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/messages"
)

// TestHealthzJudgesFetches checks that the split bridge's /healthz turns
// unhealthy, with the bridge's reason, when no fetch has succeeded for
// longer than the policy allows, and healthy again after a good fetch.
func TestHealthzJudgesFetches(t *testing.T) {
	stats := &bridge.EdgeStats{}
	policy := bridge.HealthPolicy{FetchInterval: 20 * time.Millisecond,
		RetryDelay: time.Millisecond, MaxFailures: 1}
	srv := httptest.NewServer(operatorsHandler(stats, policy))
	defer srv.Close()

	rep, code := getHealth(t, srv.URL)
	if code != http.StatusOK || rep.Status != "ok" {
		t.Fatalf("/healthz at start = %d %+v, want 200 ok", code, rep)
	}

	deadline := time.Now().Add(10 * time.Second)
	for code == http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		rep, code = getHealth(t, srv.URL)
	}
	if code != http.StatusServiceUnavailable || len(rep.Problems) != 1 ||
		!strings.HasPrefix(rep.Problems[0], "engine unreachable: no good config fetch") {
		t.Fatalf("/healthz without a fetch = %d %+v, want 503 naming the fetch",
			code, rep)
	}

	stats.LastFetch.Store(time.Now().UnixNano())
	if rep, code = getHealth(t, srv.URL); code != http.StatusOK {
		t.Errorf("/healthz after a good fetch = %d %+v, want 200", code, rep)
	}
}

func getHealth(t *testing.T, base string) (messages.HealthReport, int) {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("get /healthz: %v", err)
	}
	defer resp.Body.Close()
	var rep messages.HealthReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatalf("decode /healthz: %v", err)
	}
	return rep, resp.StatusCode
}
