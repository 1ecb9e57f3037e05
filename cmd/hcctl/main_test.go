package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) {
	// NOTE: the actor library of the real server (TestAgainstRealServer)
	// throttles dead-letter logging with a goroutine that lives one
	// throttle period (1s) after a dead letter; it ends by itself.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction(
		"github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// testNow is the fixed clock of every test.
var testNow = time.Date(2026, 12, 3, 19, 0, 0, 0, time.UTC)

// waitBound bounds a wait for a condition, generous for loaded -race
// runs.
const waitBound = 10 * time.Second

// result is what one run of hcctl did.
type result struct {
	code           int
	stdout, stderr string
}

// String lays the result out as a golden file holds it.
func (r result) String() string {
	return fmt.Sprintf("exit %d\n-- stdout --\n%s-- stderr --\n%s",
		r.code, r.stdout, r.stderr)
}

// testCLI returns a cli writing to stdout and stderr, with the fixed
// clock, UTC, no colour, an 80-column terminal and an interrupt context
// of ctx.
func testCLI(ctx context.Context, stdout, stderr *syncBuffer) *cli {
	return &cli{
		stdout: stdout,
		stderr: stderr,
		now:    func() time.Time { return testNow },
		loc:    time.UTC,
		width:  defaultWidth,
		interrupt: func() (context.Context, context.CancelFunc) {
			return context.WithCancel(ctx)
		},
	}
}

// runTest runs hcctl with args in a testCLI, after adjusting the cli
// with each of opts.
func runTest(t *testing.T, args []string, opts ...func(*cli)) result {
	t.Helper()
	var stdout, stderr syncBuffer
	c := testCLI(t.Context(), &stdout, &stderr)
	for _, o := range opts {
		o(c)
	}
	code := c.run(args)
	return result{code, stdout.String(), stderr.String()}
}

// checkGolden compares got, with each old string of replace turned into
// its new one, with testdata/name.golden, or rewrites the file under
// -update.
func checkGolden(t *testing.T, name, got string, replace ...string) {
	t.Helper()
	got = strings.NewReplacer(replace...).Replace(got)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (run with -update to accept):\n"+
			"got:\n%s\nwant:\n%s", name, path, got, want)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until cond holds, failing the test after waitBound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunUsage checks run's own handling of commands, help and bad
// invocations.
func TestRunUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a substring, or "" for nothing
		stderr string
	}{
		{name: "no arguments", code: 2, stderr: "Commands:"},
		{name: "help", args: []string{"help"}, stdout: "Commands:"},
		{name: "-h", args: []string{"-h"}, stdout: "Commands:"},
		{name: "help status", args: []string{"help", "status"},
			stdout: "Usage: hcctl status"},
		{name: "help unknown", args: []string{"help", "nope"}, code: 2,
			stderr: `unknown command "nope"`},
		{name: "unknown command", args: []string{"statuz"}, code: 2,
			stderr: `hcctl: unknown command "statuz"`},
		{name: "flags first", args: []string{"-addr", "x", "status"},
			code: 2, stderr: `unknown command "-addr"`},
		{name: "command -h", args: []string{"tree", "-h"},
			stderr: "Usage: hcctl tree"},
		{name: "unknown flag", args: []string{"status", "-bogus"}, code: 2,
			stderr: "flag provided but not defined: -bogus"},
		{name: "arguments", args: []string{"health", "now"}, code: 2,
			stderr: "hcctl health: unexpected arguments: now"},
		{name: "state", args: []string{"status", "-state", "sick"},
			code: 2, stderr: `-state: want healthy, unhealthy or unknown`},
		{name: "type", args: []string{"status", "-type", "smtp"}, code: 2,
			stderr: `-type: want tcp, http, dns, icmp, udp or radius`},
		{name: "status output", args: []string{"status", "-o", "yaml"},
			code: 2, stderr: `-o: want table or json, got "yaml"`},
		{name: "tree output", args: []string{"tree", "-o", "table"},
			code: 2, stderr: `-o: want text or json, got "table"`},
		{name: "empty addr", args: []string{"health", "-addr", ""},
			code: 2, stderr: "-addr: missing"},
		{name: "timeout", args: []string{"tree", "-timeout", "0s"},
			code: 2, stderr: "-timeout: must be positive"},
		{name: "watch timeout", args: []string{"watch", "-timeout", "-1s"},
			code: 2, stderr: "-timeout: must be positive"},
		{name: "inject neither", args: []string{"inject", "-fault", "hang"},
			code: 2, stderr: "give exactly one of -id and -actor"},
		{name: "inject both",
			args: []string{"inject", "-id", "0", "-actor", "manager"},
			code: 2, stderr: "give exactly one of -id and -actor"},
		{name: "inject no fault", args: []string{"inject", "-id", "7"},
			code: 2, stderr: "-fault: missing"},
		{name: "inject fault",
			args: []string{"inject", "-id", "7", "-fault", "boom"},
			code: 2, stderr: `-fault: unknown fault "boom"`},
		{name: "inject actor", args: []string{"inject", "-actor", "hc"},
			code: 2, stderr: `-actor: unknown actor "hc"`},
		{name: "inject actor fault",
			args: []string{"inject", "-actor", "proxy", "-fault", "slow"},
			code: 2, stderr: "-fault: actor proxy accepts only panic"},
		{name: "inject count",
			args: []string{"inject", "-id", "7", "-fault", "hang",
				"-count", "0"},
			code: 2, stderr: "-count: must be within 1-1000000, got 0"},
		{name: "clear arguments", args: []string{"clear", "all"}, code: 2,
			stderr: "unexpected arguments: all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tt.args, code,
					tt.code, &stderr)
			}
			checkOutput(t, "stdout", stdout.String(), tt.stdout)
			checkOutput(t, "stderr", stderr.String(), tt.stderr)
		})
	}
}

// checkOutput checks that got contains want, or is empty when want is.
func checkOutput(t *testing.T, name, got, want string) {
	t.Helper()
	switch {
	case want == "" && got != "":
		t.Errorf("%s = %q, want nothing", name, got)
	case !strings.Contains(got, want):
		t.Errorf("%s = %q, want it to contain %q", name, got, want)
	}
}
