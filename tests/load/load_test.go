package main

import (
	"os"
	"strings"
	"testing"
	"time"
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
}
