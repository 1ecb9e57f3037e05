package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/messages"
)

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
	var got int
	var last messages.HealthReport
	defer func() {
		if t.Failed() {
			t.Logf("last /healthz: %d %+v", got, last)
		}
	}()
	waitUntil(t, fmt.Sprintf("/healthz %d with problem %q", code, problem), func() bool {
		got, last = s.healthz(t)
		switch {
		case got != code:
			return false
		case problem == "":
			return last.Status == "ok" && len(last.Problems) == 0 &&
				last.Engine != nil && last.Engine.Reachable
		}
		return last.Status == "degraded" && len(last.Problems) == 1 &&
			re.MatchString(last.Problems[0])
	})
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
