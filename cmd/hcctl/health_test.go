package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// TestHealth checks hcctl health's output and exit status against
// golden files, for reports of a large fleet; TestAgainstRealServer has
// those of the real server, degraded and stopped among them.
func TestHealth(t *testing.T) {
	ok := testHealth()
	socketOnly := &messages.HealthReport{Status: "ok", Checks: 3, Clients: 2}
	tests := []struct {
		golden  string
		handler http.HandlerFunc
		args    []string
	}{
		{"health_ok", jsonHandler(t, http.StatusOK, ok), nil},
		{"health_ok_json", jsonHandler(t, http.StatusOK, ok),
			[]string{"-o", "json"}},
		{"health_socket_only", jsonHandler(t, http.StatusOK, socketOnly),
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			addr := fakeAPI(t, map[string]any{"GET /healthz": tt.handler})
			args := append([]string{"health", "-addr", addr}, tt.args...)
			got := runTest(t, args)
			checkGolden(t, tt.golden, got.String(), addr, "ADDR")
		})
	}
}

// TestHealthTimeout checks that a server that does not answer within
// -timeout is reported as such.
func TestHealthTimeout(t *testing.T) {
	release := make(chan struct{})
	addr := fakeAPI(t, map[string]any{
		"GET /healthz": http.HandlerFunc(func(http.ResponseWriter,
			*http.Request) {
			<-release
		}),
	})
	// Cleanups run last in first out: release before the server closes.
	t.Cleanup(func() { close(release) })
	got := runTest(t, []string{"health", "-addr", addr, "-timeout", "50ms"})
	checkGolden(t, "health_timeout", got.String(), addr, "ADDR")
}

// testHealth is the /healthz of a large fleet in good health.
func testHealth() *messages.HealthReport {
	fetched := testNow.Add(-12 * time.Second)
	return &messages.HealthReport{
		Status: "ok", Checks: 1200, Clients: 1,
		Engine: &messages.EngineHealth{Reachable: true, LastFetch: &fetched,
			LastFetchAge: 12.5},
		StartLag: &messages.LagReport{Probes: 48000, P50Seconds: 0.00042,
			P99Seconds: 0.0183},
	}
}
