package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lbhealth/hcsupervisor/messages"
)

// The test binary acts as a fake healthcheck-server or
// healthcheck-proxy, by the name it is started under, when fakeEnv is set
// in the environment. fakeEnv's value picks the fake server's behaviour
// and fakeProxyEnv's the fake proxy's (default "serve"): "serve", "exit"
// (exit at once with status 3) or "hang" (ignore SIGTERM).
const (
	fakeEnv      = "HCDEMO_FAKE"
	fakeProxyEnv = "HCDEMO_FAKE_PROXY"
)

// waitTimeout bounds every wait for a condition in these tests.
const waitTimeout = 10 * time.Second

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		if filepath.Base(os.Args[0]) == "healthcheck-proxy" {
			mode = cmp.Or(os.Getenv(fakeProxyEnv), "serve")
			os.Exit(fakeProxyMain(mode, os.Args[1:]))
		}
		os.Exit(fakeServerMain(mode, os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer that is safe for concurrent use.
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

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// useFakes makes the server and proxy that tests start be the fakes, in
// serverMode and proxyMode, and returns their paths.
func useFakes(
	t *testing.T, serverMode, proxyMode string,
) (server, proxy string) {
	t.Helper()
	t.Setenv(fakeEnv, serverMode)
	t.Setenv(fakeProxyEnv, proxyMode)
	// Under -race a binary sleeps 1s at exit by default; the fakes need
	// not.
	t.Setenv("GORACE", "atexit_sleep_ms=0")

	// The fakes are the test binary under the real binaries' names.
	dir := t.TempDir()
	for _, name := range []string{"healthcheck-server", "healthcheck-proxy"} {
		if err := os.Symlink(testExe(t), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "healthcheck-server"),
		filepath.Join(dir, "healthcheck-proxy")
}

// testExe returns the path of the running test binary.
func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// fastOptions returns the default options in mode, with the fake
// binaries, a flapper that does not turn during a test, and fast fetches.
func fastOptions(mode, server, proxy string) options {
	o := defaultOptions()
	o.Mode = mode
	o.Server, o.Proxy = server, proxy
	o.FlapPeriod = time.Hour
	o.FetchInterval = 20 * time.Millisecond
	o.ChangeAfter = 0
	return o
}

// startRun runs the demo with o in the background. stop cancels it and
// returns run's error; it is also called at cleanup.
func startRun(t *testing.T, o options) (out *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, out, false) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return out, stop
}

// changeLineRE matches a change line of the check name to state, e.g.
// "18:40:02.123  tcp-echo  tcp 127.0.0.1:7  unknown -> healthy  ...".
func changeLineRE(name, to string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\S+  ` + regexp.QuoteMeta(name) +
		` .* -> ` + to + ` `)
}

// waitForChanges waits until out shows each check of names turning to
// the state in want, or to any state where want has none.
func waitForChanges(
	t *testing.T, out *syncBuffer, names []string, want map[string]string,
) {
	t.Helper()
	for _, name := range names {
		re := changeLineRE(name, cmp.Or(want[name], `\S+`))
		waitFor(t, name+" to turn "+cmp.Or(want[name], "anything"), func() bool {
			return re.MatchString(out.String())
		})
	}
}

// names returns the names of checks.
func names(checks []demoCheck) []string {
	var out []string
	for _, c := range checks {
		out = append(out, c.Name)
	}
	return out
}

// testPlan returns the demo's plan for backends that need not run.
func testPlan(t *testing.T) demoPlan {
	t.Helper()
	// Distinct ports, else the Engine would give identical checks one ID.
	port := func(p uint16) netip.AddrPort {
		return netip.AddrPortFrom(loopback, p)
	}
	pl, err := newPlan(&backends{
		Echo: port(1), Refused: port(2), HTTPOK: port(3), HTTPDown: port(4),
		HTTPFlap: port(5), HTTPS: port(6), DNS: port(7), UDPEcho: port(8),
		RADIUS: port(9),
	}, time.Hour)
	if err != nil {
		t.Fatalf("newPlan: %v", err)
	}
	return pl
}

// dirRE finds the demo's temp dir in its header.
var dirRE = regexp.MustCompile(`(/\S*hcdemo-\d+)/`)

// checkDirRemoved fails the test when out names a temp dir that is still
// there.
func checkDirRemoved(t *testing.T, out string) {
	t.Helper()
	m := dirRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output lacks the temp dir:\n%s", out)
	}
	if _, err := os.Stat(m[1]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temp dir %s still there after run: stat: %v", m[1], err)
	}
}

func TestRunModes(t *testing.T) {
	pl := testPlan(t)
	tests := []struct {
		mode      string
		wantNote  string
		wantFinal string
	}{
		{modeInProcess, "engine: removed http-503, added tls-handshake",
			"status the Engine holds for 11 checks"},
		{modeSplit, "engine: removed http-503, added tls-handshake",
			"status the Engine holds for 11 checks"},
		{modeSocket, "hcdemo: removed http-503, added tls-handshake",
			"status of 11 checks:"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			server, proxy := useFakes(t, "serve", "serve")
			o := fastOptions(tt.mode, server, proxy)
			// The change may come before or after the first results:
			// the test waits for the checks served after it.
			o.ChangeAfter = 100 * time.Millisecond
			out, stop := startRun(t, o)

			waitForChanges(t, out, names(pl.Changed()), map[string]string{})
			waitFor(t, "the change", func() bool {
				return strings.Contains(out.String(), tt.wantNote)
			})
			if tt.mode != modeSocket {
				waitFor(t, "the bridge to fetch the change", func() bool {
					return strings.Contains(out.String(),
						"engine: the bridge fetched the change")
				})
			}
			if err := stop(); err != nil {
				t.Fatalf("run: %v", err)
			}

			got := out.String()
			if !strings.Contains(got, tt.wantFinal) {
				t.Errorf("output lacks %q:\n%s", tt.wantFinal, got)
			}
			checkDirRemoved(t, got)
		})
	}
}

func TestRunWithSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "hc.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	f := startFake(ln)
	defer f.Close()
	o := fastOptions(modeSocket, "/nonexistent/must-not-be-started", "")
	o.Socket = socket
	out, stop := startRun(t, o)

	waitForChanges(t, out, names(testPlan(t).Initial), map[string]string{})
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}

	// The demo's checks, then an empty set that removes them.
	if got := len(<-f.Updates); got != 11 {
		t.Errorf("first update has %d configs, want 11", got)
	}
	if got := len(<-f.Updates); got != 0 {
		t.Errorf("last update has %d configs, want 0", got)
	}
}

func TestRunFails(t *testing.T) {
	tests := []struct {
		name      string
		mode      string
		fake      string // fake server's mode
		fakeProxy string // fake proxy's mode
		server    string // "" means the fake
		proxy     string // "" means the fake
		wantErr   string
	}{
		{
			name:    "missing server",
			mode:    modeInProcess,
			server:  "/nonexistent/healthcheck-server",
			wantErr: "run `make demo`",
		},
		{
			name:    "missing proxy",
			mode:    modeSplit,
			proxy:   "/nonexistent/healthcheck-proxy",
			wantErr: "and pass -proxy PATH",
		},
		{
			name: "server exits in process",
			mode: modeInProcess,
			fake: "exit",
			wantErr: "healthcheck-server exited before fetching the " +
				"checks (exit status 3)",
		},
		{
			name: "server exits before its socket accepts",
			mode: modeSocket,
			fake: "exit",
			wantErr: "healthcheck-server exited before accepting " +
				"connections (exit status 3)",
		},
		{
			name:      "proxy exits",
			mode:      modeSplit,
			fakeProxy: "exit",
			wantErr: "healthcheck-proxy exited before fetching the " +
				"checks (exit status 3)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, proxy := useFakes(t, cmp.Or(tt.fake, "serve"),
				cmp.Or(tt.fakeProxy, "serve"))
			o := fastOptions(tt.mode, cmp.Or(tt.server, server),
				cmp.Or(tt.proxy, proxy))
			err := run(context.Background(), o, io.Discard, false)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("run: got %v, want an error containing %q",
					err, tt.wantErr)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*options)
		wantErr string // "" for valid
	}{
		{"defaults", func(*options) {}, ""},
		{"split", func(o *options) { o.Mode = modeSplit }, ""},
		{"socket with a running server", func(o *options) {
			o.Mode, o.Socket = modeSocket, "/tmp/hc.sock"
		}, ""},
		{"unknown mode", func(o *options) { o.Mode = "engine" }, "-mode"},
		{"socket outside socket mode", func(o *options) {
			o.Socket = "/tmp/hc.sock"
		}, "-socket"},
		{"negative duration", func(o *options) { o.Duration = -1 }, "-duration"},
		{"no flap period", func(o *options) { o.FlapPeriod = 0 }, "-flap_period"},
		{"negative change", func(o *options) { o.ChangeAfter = -1 },
			"-change_after"},
		{"no fetch interval", func(o *options) { o.FetchInterval = 0 },
			"-fetch_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := defaultOptions()
			tt.change(&o)
			err := o.validate()
			if got := fmt.Sprint(err); tt.wantErr == "" && err != nil ||
				tt.wantErr != "" && !strings.Contains(got, tt.wantErr) {
				t.Errorf("validate: got %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestStopKillsHungProcess(t *testing.T) {
	server, _ := useFakes(t, "hang", "serve")
	socket := filepath.Join(t.TempDir(), "hc.sock")
	d := &demo{o: options{Mode: modeSocket}, serverSocket: socket}
	p, err := startProcess(server, "server", d.serverArgs())
	if err != nil {
		t.Fatal(err)
	}
	// Once the socket accepts, the fake ignores SIGTERM.
	conn, err := dialSocket(context.Background(), socket, p.Exited())
	if err != nil {
		p.Stop(0)
		t.Fatal(err)
	}
	conn.Close()

	err = p.Stop(100 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed it") {
		t.Errorf("Stop: got %v, want it to report killing the process", err)
	}
}

func TestDialRejectsMissingReady(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "hc.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Write([]byte(`{"type":"status_response","statuses":[]}` + "\n"))
	}()

	c, err := dial(context.Background(), socket, nil)
	if err == nil {
		c.Close()
	}
	<-done
	want := "got *messages.StatusResponse first"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("dial: got %v, want an error containing %q", err, want)
	}
}

func TestClientReportsBadLines(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "hc.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Write([]byte(`{"type":"ready"}` + "\n" + `{"type":"bogus"}` + "\n"))
	}()

	c, err := dial(context.Background(), socket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case msg := <-c.Msgs:
		bad, ok := msg.(badLine)
		if !ok || !errors.Is(bad.err, messages.ErrUnknownType) {
			t.Errorf("got %#v, want a badLine wrapping ErrUnknownType", msg)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no message from the client")
	}
	<-done
	select {
	case <-c.Done:
	case <-time.After(waitTimeout):
		t.Fatal("reader still running after the server hung up")
	}
	if !errors.Is(c.Err, io.EOF) {
		t.Errorf("Err: got %v, want io.EOF", c.Err)
	}
}
