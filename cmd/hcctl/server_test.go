package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
)

// realConfigs is the update_configs line the real server's socket client
// sends: a healthy tcp check, an unhealthy http one, and a dns check
// whose first probe does not end during a test.
const realConfigs = `{"type":"update_configs","configs":[` +
	`{"id":1,"interval":"100ms","timeout":"1s","checker_type":"tcp",` +
	`"ip":"10.0.0.1","port":80},` +
	`{"id":2,"interval":"100ms","timeout":"1s","checker_type":"http",` +
	`"ip":"10.0.0.2","port":8080,"path":"/healthz"},` +
	`{"id":3,"interval":"1h","timeout":"30m","checker_type":"dns",` +
	`"ip":"10.0.0.53","port":53,"query":"www.example.com"}]}` + "\n"

// Results of the scripted probes; the checks measure the durations.
var (
	tcpUp = messages.ProbeResult{Success: true,
		Message: "TCP connect to 10.0.0.1:80"}
	tcpDown = messages.ProbeResult{
		Message: "TCP connect to 10.0.0.1:80: connection refused"}
	httpDown = messages.ProbeResult{
		Message: "HTTP GET http://10.0.0.2:8080/healthz: got status 503 " +
			"Service Unavailable, want 200"}
)

// scriptedProbers hands out probers that answer what the test sets per
// check ID; a check without a result probes until its context ends.
type scriptedProbers struct {
	mu      sync.Mutex
	results map[uint64]messages.ProbeResult
}

func (s *scriptedProbers) set(id uint64, r messages.ProbeResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results[id] = r
}

func (s *scriptedProbers) newProber(cfg *messages.Config) (actors.Prober, error) {
	return &scriptedProber{s: s, id: cfg.ID}, nil
}

type scriptedProber struct {
	s  *scriptedProbers
	id uint64
}

func (p *scriptedProber) Probe(ctx context.Context) messages.ProbeResult {
	p.s.mu.Lock()
	r, ok := p.s.results[p.id]
	p.s.mu.Unlock()
	if !ok {
		<-ctx.Done()
		return messages.ProbeResult{Message: "timed out"}
	}
	r.Start = time.Now()
	return r
}

// realServer is a healthcheck-server's tree run in the test as main
// wires it: the manager with scripted probes, the socket proxy with a
// client, the Engine bridge against a simulated Engine, and the real
// operators' handler.
type realServer struct {
	svc     *actors.Service
	handler http.Handler
	sim     *enginesim.Server
	bridge  *bridge.EdgeStats
	probers *scriptedProbers
	client  net.Conn
}

// startReal starts a realServer, has its client send realConfigs and
// waits until every check has the state it is scripted to have.
func startReal(t *testing.T) *realServer {
	t.Helper()
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)
	dir, err := os.MkdirTemp("", "hcctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock, engine := filepath.Join(dir, "s"), filepath.Join(dir, "engine")

	r := &realServer{sim: enginesim.New(enginesim.Config{}),
		bridge: &bridge.EdgeStats{},
		probers: &scriptedProbers{results: map[uint64]messages.ProbeResult{
			1: tcpUp, 2: httpDown,
		}}}
	if err := r.sim.Listen(engine); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.sim.Close() })
	stats, edges := r.edges(t, sock, engine, logger)

	mcfg := actors.DefaultManagerConfig()
	mcfg.NewProber = r.probers.newProber
	mcfg.NotifierStats = stats.Notifier
	mcfg.FaultStats = stats.Faults
	mcfg.RestartBackoffMin = time.Millisecond
	mcfg.Logger = logger
	r.svc, err = actors.Start(actors.ServiceConfig{
		Manager: mcfg, Edges: edges, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.stop(t) })
	r.handler = r.svc.OperatorHandler(stats)

	// The bridge's one fetch, of no checks, must come before the configs.
	waitFor(t, "the bridge's first fetch", func() bool {
		return r.bridge.Fetches.Load() == 1
	})
	r.client = dialReal(t, sock)
	if _, err := io.WriteString(r.client, realConfigs); err != nil {
		t.Fatal(err)
	}
	r.waitStates(t, map[uint64]messages.State{1: messages.StateHealthy,
		2: messages.StateUnhealthy, 3: messages.StateUnknown})
	return r
}

// edges returns the socket proxy on sock and the Engine bridge of the
// Engine on engine, as main builds them, and the stats main exports.
func (r *realServer) edges(t *testing.T, sock, engine string,
	logger zerolog.Logger) (actors.OperatorStats, []actors.Edge) {
	t.Helper()
	// One failed HealthState call is enough to call the Engine
	// unreachable; see degrade.
	edgeCfg := bridge.EdgeConfig{
		Engine:        bridge.NewEngineClient(engine, 10*time.Second),
		FetchInterval: time.Hour,
		RetryDelay:    50 * time.Millisecond,
		MaxFailures:   1,
		Stats:         r.bridge,
		Logger:        logger,
	}
	stats := actors.OperatorStats{
		Notifier: &actors.NotifierStats{},
		Proxy:    &actors.ProxyStats{},
		Faults:   &actors.FaultStats{},
		Extra:    []prometheus.Collector{r.bridge},
		Engine:   r.bridge.Watch(edgeCfg),
	}
	proxy, err := actors.ListenProxy(actors.ProxyConfig{
		Path: sock, Stats: stats.Proxy, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	edge := bridge.NewEdge(edgeCfg)
	return stats, []actors.Edge{proxy, {Name: "bridge", Props: edge}}
}

// dialReal connects a socket client, reads its ready line, and keeps
// reading what the server sends until the test ends.
func dialReal(t *testing.T, sock string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("unix", sock, waitBound)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, conn)
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return conn
}

// stop stops the tree; the handler keeps answering, as main's listener
// does while the tree stops.
func (r *realServer) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.svc.Stop(ctx); err != nil {
		t.Error(err)
	}
}

// get answers path from the real handler.
func (r *realServer) get(path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	r.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// getJSON decodes the real handler's answer to path into v.
func (r *realServer) getJSON(t *testing.T, path string, v any) int {
	t.Helper()
	rec := r.get(path)
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, rec.Body)
	}
	return rec.Code
}

// waitStates waits until the checks have the given states, the bridge
// has told the Engine all of it and no actor has a message waiting.
func (r *realServer) waitStates(t *testing.T, want map[uint64]messages.State) {
	t.Helper()
	waitFor(t, "the scripted states, told and settled", func() bool {
		var rep messages.StatusReport
		r.getJSON(t, "/status", &rep)
		for _, cr := range rep.Checks {
			if st, ok := want[cr.ID]; !ok || cr.Status.State != st {
				return false
			}
		}
		var tree messages.TreeReport
		r.getJSON(t, "/tree", &tree)
		for _, a := range tree.Actors {
			if a.Mailbox != 0 {
				return false
			}
		}
		return len(rep.Checks) == len(want) && r.bridge.Pending.Load() == 0
	})
}

// crash injects one panic into check id and waits for its restart.
func (r *realServer) crash(t *testing.T, id uint64) {
	t.Helper()
	res, err := r.svc.System().Root.RequestFuture(r.svc.Manager(),
		&messages.InjectFault{ID: id, Fault: messages.FaultPanic, Count: 1},
		waitBound).Result()
	if _, ok := res.(*messages.Ack); err != nil || !ok {
		t.Fatalf("inject_fault = %#v, %v; want an ack", res, err)
	}
	waitFor(t, "the restart", func() bool {
		var cr messages.CheckReport
		r.getJSON(t, "/status/2", &cr)
		return cr.Status.Restarts == 1
	})
}

// degrade makes the Engine fail every HealthState call and check 1 fail,
// so that the bridge's next call fails and it calls the Engine
// unreachable.
func (r *realServer) degrade(t *testing.T) {
	t.Helper()
	r.sim.SetHealthStateError("engine busy")
	r.probers.set(1, tcpDown)
	waitFor(t, "/healthz degraded", func() bool {
		return r.get("/healthz").Code == http.StatusServiceUnavailable
	})
}

// recorded is one answer of the real handler, with what depends on the
// clock pinned (see pin).
type recorded struct {
	code        int
	contentType string
	body        []byte
}

// record answers each path from the real handler, pinned.
func (r *realServer) record(t *testing.T, paths ...string) map[string]recorded {
	t.Helper()
	out := make(map[string]recorded, len(paths))
	for _, path := range paths {
		rec := r.get(path)
		ct := rec.Header().Get("Content-Type")
		body := rec.Body.Bytes()
		if ct == "application/json" {
			body = pin(t, path, body)
		}
		out["GET "+path] = recorded{code: rec.Code, contentType: ct, body: body}
	}
	return out
}

// recordSettled records /tree and paths as record does, again until the
// tree shows no message waiting: the checks' probes come and go.
func (r *realServer) recordSettled(t *testing.T,
	paths ...string) map[string]recorded {
	t.Helper()
	var out map[string]recorded
	waitFor(t, "a recording with no message waiting", func() bool {
		out = r.record(t, append(paths, "/tree")...)
		var tree messages.TreeReport
		decodeStrict(t, out["GET /tree"].body, &tree)
		for _, a := range tree.Actors {
			if a.Mailbox != 0 {
				return false
			}
		}
		return true
	})
	return out
}

// pin sets what depends on the clock in a JSON answer of the real
// handler to fixed values before testNow: times, ages, probe durations
// and counts, start lags. The rest, what the golden files are about,
// stays as the server sent it: the fields, states, messages, restarts,
// problems.
func pin(t *testing.T, path string, body []byte) []byte {
	t.Helper()
	var v any
	switch {
	case path == "/status":
		rep := &messages.StatusReport{}
		decodeStrict(t, body, rep)
		for i := range rep.Checks {
			pinCheck(&rep.Checks[i])
		}
		v = rep
	case strings.HasPrefix(path, "/status/"):
		cr := &messages.CheckReport{}
		decodeStrict(t, body, cr)
		pinCheck(cr)
		v = cr
	case path == "/healthz":
		rep := &messages.HealthReport{}
		decodeStrict(t, body, rep)
		pinHealth(rep)
		v = rep
	default:
		return body
	}
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// decodeStrict decodes body into v, failing on a field v lacks.
func decodeStrict(t *testing.T, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
}

func pinCheck(cr *messages.CheckReport) {
	st := &cr.Status
	if cr.Since != nil {
		cr.Since = before(3*time.Minute + 12*time.Second)
	}
	if !st.LastCheck.IsZero() {
		st.LastCheck = testNow.Add(-2 * time.Second)
		st.Duration = 2350 * time.Microsecond
	}
	if st.Successes > 0 {
		st.Successes = 120
	}
	if st.Failures > 0 {
		st.Failures = 7
	}
}

func pinHealth(rep *messages.HealthReport) {
	if rep.LastUpdate != nil {
		rep.LastUpdate, rep.LastUpdateAge = before(30*time.Second), 30
	}
	if rep.StartLag != nil {
		rep.StartLag = &messages.LagReport{Probes: 4800,
			P50Seconds: 0.00042, P99Seconds: 0.0183}
	}
	if e := rep.Engine; e != nil && e.LastFetch != nil {
		e.LastFetch, e.LastFetchAge = before(12*time.Second), 12
	}
}

// replay serves recorded answers on loopback, as fakeAPI does.
func replay(t *testing.T, answers map[string]recorded) (addr string) {
	t.Helper()
	routes := make(map[string]any, len(answers))
	for pattern, a := range answers {
		routes[pattern] = http.HandlerFunc(func(w http.ResponseWriter,
			_ *http.Request) {
			w.Header().Set("Content-Type", a.contentType)
			w.WriteHeader(a.code)
			w.Write(a.body)
		})
	}
	return fakeAPI(t, routes)
}

// TestAgainstRealServer checks hcctl's output against golden files for
// answers of the real operators' handler: a running server, the same
// with its Engine failing, the same once its tree has stopped. It also
// runs hcctl against the running server itself, unpinned.
func TestAgainstRealServer(t *testing.T) {
	r := startReal(t)
	r.crash(t, 2)
	r.waitStates(t, map[uint64]messages.State{1: messages.StateHealthy,
		2: messages.StateUnhealthy, 3: messages.StateUnknown})
	running := r.recordSettled(t, "/status", "/status/2", "/status/99",
		"/healthz")
	live := httptest.NewServer(r.handler)
	defer live.Close()
	liveAddr := live.Listener.Addr().String()
	got := runTest(t, []string{"status", "-addr", liveAddr})
	if got.code != 0 || !strings.HasSuffix(got.stdout,
		"\n3 checks: 1 healthy, 1 unhealthy, 1 unknown\n") {
		t.Errorf("hcctl status against the live server:\n%s", got)
	}

	r.degrade(t)
	degraded := r.record(t, "/healthz")
	r.stop(t)
	stopped := r.record(t, "/status", "/healthz", "/tree")

	tests := []struct {
		golden  string
		answers map[string]recorded
		args    []string
	}{
		{"real_status", running, []string{"status"}},
		{"real_status_json", running, []string{"status", "-o", "json"}},
		{"real_status_id", running, []string{"status", "-id", "2"}},
		{"real_status_id_missing", running, []string{"status", "-id", "99"}},
		{"real_tree", running, []string{"tree"}},
		{"real_health_ok", running, []string{"health"}},
		{"real_health_ok_json", running, []string{"health", "-o", "json"}},
		{"health_degraded", degraded, []string{"health"}},
		{"health_degraded_json", degraded, []string{"health", "-o", "json"}},
		{"health_unavailable", stopped, []string{"health"}},
		{"status_unavailable", stopped, []string{"status"}},
		{"tree_stopped", stopped, []string{"tree"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			addr := replay(t, tt.answers)
			args := append(tt.args[:1:1], "-addr", addr)
			got := runTest(t, append(args, tt.args[1:]...))
			checkGolden(t, tt.golden, got.String(), addr, "ADDR")
		})
	}
}

// onlyAfterRestore are fields the server sends only for a check restored
// from a state file and not yet probed, which the real server of these
// tests never has.
var onlyAfterRestore = map[string]bool{"checks[].status.unconfirmed": true}

// TestFixturesLikeServer checks that the hand-made answers of the other
// tests hold only fields the real handler sends, so that they cannot
// drift from it.
func TestFixturesLikeServer(t *testing.T) {
	r := startReal(t)
	tests := []struct {
		path    string
		fixture any
	}{
		{"/status", testReport()},
		{"/status/2", checkByID(t, 2)},
		{"/tree", testTree()},
		{"/healthz", testHealth()},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var real any
			if code := r.getJSON(t, tt.path, &real); code != http.StatusOK {
				t.Fatalf("GET %s: status %d", tt.path, code)
			}
			b, err := json.Marshal(tt.fixture)
			if err != nil {
				t.Fatal(err)
			}
			var fixture any
			if err := json.Unmarshal(b, &fixture); err != nil {
				t.Fatal(err)
			}
			realKeys, fixtureKeys := keys(real, ""), keys(fixture, "")
			for k := range fixtureKeys {
				if !realKeys[k] && !onlyAfterRestore[k] {
					t.Errorf("the fixture has %s, which the server never sends", k)
				}
			}
		})
	}
}

// keys returns the paths of every object key in v, as "checks[].id".
func keys(v any, prefix string) map[string]bool {
	out := make(map[string]bool)
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			out[prefix+k] = true
			for p := range keys(sub, prefix+k+".") {
				out[p] = true
			}
		}
	case []any:
		for _, sub := range v {
			for p := range keys(sub, strings.TrimSuffix(prefix, ".")+"[].") {
				out[p] = true
			}
		}
	}
	return out
}
