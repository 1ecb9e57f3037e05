package main

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/messages"
)

// TestMain lets the test binary stand in for the harness's children: the
// coordinator runs its own executable with envRole set.
func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(runRole(role))
	}
	os.Exit(m.Run())
}

// TestQuick runs the whole harness small: 1,000 checks at a 1s interval,
// one-second windows. It asserts nothing about speed, only that every
// design ran and every check ran once, so it stays in make test; -short
// skips it.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("the harness's quick run takes about ten seconds")
	}
	opts := defaultOptions()
	opts.n = 1000
	opts.interval = time.Second
	opts.duration = time.Second
	opts.floorWindow = 500 * time.Millisecond
	opts.proxy = buildProxy(t)
	if err := opts.validate(); err != nil {
		t.Fatal(err)
	}
	rep, err := run(opts)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.print(&out)
	t.Log("\n" + out.String())

	if rep.Floor == nil || rep.Floor.Paced.Probes == 0 || rep.Floor.Tight.Probes == 0 {
		t.Errorf("the floor ran no probes: %+v", rep.Floor)
	}
	for name, d := range map[string]*designResult{
		"naive": rep.Naive, "supervisor": rep.Supervisor,
	} {
		switch {
		case d == nil:
			t.Errorf("%s did not run", name)
		case !d.AllRanOK || d.RanOnce != int64(opts.n):
			t.Errorf("%s: %d of %d checks ran once", name, d.RanOnce, opts.n)
		}
	}
	if a := rep.Supervisor.Apply; a == nil || a.Kept != a.KeptOf {
		t.Errorf("the 10%% change did not keep the other checks' state: %+v", a)
	}
	if n := rep.Notify; n == nil || n.Received == 0 {
		t.Errorf("the Engine heard of no failed backend: %+v", n)
	}
	if n := rep.NotifySplit; n == nil || n.Received == 0 {
		t.Errorf("the split deployment's Engine heard of no failed backend: %+v (%s)",
			n, rep.SplitError)
	}
}

// buildProxy builds bin/healthcheck-proxy into a directory of the test's.
func buildProxy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "healthcheck-proxy")
	cmd := exec.Command("go", "build", "-o", bin,
		"github.com/lbhealth/hcsupervisor/cmd/healthcheck-proxy")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building healthcheck-proxy: %v\n%s", err, out)
	}
	return bin
}

// The split deployment's Engine serves the run's checks as the configs
// the supervisor is given: else the proxy's update, sent as it connects,
// would change every check in the middle of the latency phase.
func TestSplitEngineServesTheRunsConfigs(t *testing.T) {
	s := &spec{N: 250, Interval: 10 * time.Second, Timeout: 5 * time.Second,
		HTTPEvery: 100, SplitEngine: filepath.Join(t.TempDir(), "engine.sock")}
	for i := range 8 {
		s.TCP = append(s.TCP, netip.AddrPortFrom(backendBase.Next(), uint16(2000+i)))
	}
	s.HTTP = []netip.AddrPort{netip.AddrPortFrom(backendBase, 8080)}
	se, err := startSplitEngine(s)
	if err != nil {
		t.Fatal(err)
	}
	defer se.sim.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	checks, err := bridge.NewEngineClient(s.SplitEngine, 5*time.Second).Healthchecks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, rejected := bridge.ToConfigs(checks)
	if len(rejected) > 0 {
		t.Fatalf("the bridge rejected %d of the Engine's checks: %v", len(rejected), rejected)
	}
	want := s.configs()
	if len(got) != len(want) {
		t.Fatalf("the Engine served %d checks, want %d", len(got), len(want))
	}
	byID := make(map[uint64]messages.Config, len(got))
	for _, c := range got {
		byID[c.ID] = c
	}
	for _, w := range want {
		if g, ok := byID[w.ID]; !ok || !g.Equal(&w) {
			t.Errorf("check %d: the Engine serves %v, want %v", w.ID, g.String(), w.String())
		}
	}
}

// exactQuantiles ranks as hist does (the ceil(q·n)-th smallest) but
// reports the durations themselves, not their buckets' edges.
func TestExactQuantiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // out of order: it sorts
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		name string
		ds   []time.Duration
		want quantiles
	}{
		{"none", nil, quantiles{}},
		{"one", []time.Duration{7 * time.Millisecond},
			quantiles{N: 1, P50: 7 * time.Millisecond, P99: 7 * time.Millisecond,
				Max: 7 * time.Millisecond}},
		{"1 to 100 ms", ds, quantiles{N: 100, P50: 50 * time.Millisecond,
			P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exactQuantiles(tt.ds); got != tt.want {
				t.Errorf("exactQuantiles = %+v, want %+v", got, tt.want)
			}
		})
	}
}
