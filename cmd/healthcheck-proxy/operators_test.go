package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/messages"
)

// TestHealthzJudgesFetches checks that the split bridge's /healthz turns
// unhealthy, with the bridge's reason, when no fetch has succeeded for
// longer than the bridge's timing allows, and healthy again after a good fetch.
func TestHealthzJudgesFetches(t *testing.T) {
	stats := &bridge.EdgeStats{}
	// No good fetch for 400ms is a problem: long enough for a request
	// on a loaded machine to see it ok first.
	timing := bridge.EdgeConfig{FetchInterval: 200 * time.Millisecond,
		RetryDelay: 50 * time.Millisecond, MaxFailures: 3}
	srv := httptest.NewServer(operatorsHandler(stats, timing,
		actors.NewActorTelemetry()))
	defer srv.Close()

	rep, code := getHealth(t, srv.URL)
	if code != http.StatusOK || rep.Status != "ok" {
		t.Fatalf("/healthz at start = %d %+v, want 200 ok", code, rep)
	}

	waitFor(t, "/healthz to change", func() bool {
		rep, code = getHealth(t, srv.URL)
		return code != http.StatusOK
	})
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

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
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

// TestOperatorsMeasureTheActors checks that the split bridge's listener
// exports its actors' metrics, and no check's, and shows them on /tree.
func TestOperatorsMeasureTheActors(t *testing.T) {
	logger := zerolog.New(zerolog.NewTestWriter(t))
	sys := actors.NewSystem(logger)
	defer sys.Shutdown()
	tel := actors.NewActorTelemetry()
	defer tel.WatchDeadLetters(sys)()
	dir := t.TempDir()
	stats := &bridge.EdgeStats{}
	split, err := bridge.StartSplit(sys,
		bridge.LinkConfig{Socket: filepath.Join(dir, "none.sock"), Logger: logger},
		bridge.EdgeConfig{
			Engine:        bridge.NewEngineClient(filepath.Join(dir, "e.sock"), time.Second),
			FetchInterval: time.Hour,
			RetryDelay:    time.Hour,
			Stats:         stats,
			Logger:        logger,
		}, tel.Wrap)
	if err != nil {
		t.Fatal(err)
	}
	defer split.Stop()
	srv := httptest.NewServer(operatorsHandler(stats,
		bridge.EdgeConfig{FetchInterval: time.Hour}, tel))
	defer srv.Close()

	var tree messages.TreeReport
	waitFor(t, "two actors on /tree", func() bool {
		tree = messages.TreeReport{}
		getJSON(t, srv.URL+"/tree", &tree)
		return len(tree.Actors) >= 2
	})
	var kinds []string
	for _, a := range tree.Actors {
		kinds = append(kinds, a.Kind)
	}
	slices.Sort(kinds)
	if want := []string{"bridge", "link"}; !slices.Equal(kinds, want) {
		t.Errorf("/tree kinds = %q, want %q", kinds, want)
	}

	metrics := getText(t, srv.URL+"/metrics")
	for _, want := range []string{
		`hc_actor_lifecycle_total{event="spawn",kind="bridge"} 1`,
		`hc_actor_lifecycle_total{event="spawn",kind="link"} 1`,
		`hc_actor_messages_total{kind="link",message="actor.Started"} 1`,
		"hc_engine_calls_total",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, not := range []string{"hc_checks", "hc_probe_start_lag_seconds"} {
		if strings.Contains(metrics, not) {
			t.Errorf("/metrics has %s, a metric of checks", not)
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(getText(t, url)), v); err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
}

func getText(t *testing.T, url string) string {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return string(b)
}
