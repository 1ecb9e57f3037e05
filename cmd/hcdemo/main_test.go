package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lbhealth/hcsupervisor/messages"
)

// fakeEnv, when set in the environment, makes the test binary act as a
// fake healthcheck-server instead of running tests. Its value picks the
// behaviour: "serve", "exit" (exit at once) or "hang" (ignore SIGTERM).
const fakeEnv = "HCDEMO_FAKE_SERVER"

// waitTimeout bounds every wait for a condition in these tests.
const waitTimeout = 10 * time.Second

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		os.Exit(fakeServerMain(mode, os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// fakeServerMain is the fake server's main. It accepts exactly the flags
// hcdemo passes to the real server, so a flag the server lacks fails.
func fakeServerMain(mode string, args []string) int {
	fs := flag.NewFlagSet("fake-server", flag.ContinueOnError)
	socket := fs.String("proxy_socket", "", "")
	for _, name := range []string{
		"engine", "metrics_addr", "log_format", "log_level",
	} {
		fs.String(name, "", "")
	}
	fs.Duration("notify_interval", 0, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch mode {
	case "exit":
		return 3
	case "hang":
		// Listen only once SIGTERM is ignored, so a test can wait for it.
		signal.Ignore(syscall.SIGTERM)
		if _, err := net.Listen("unix", *socket); err != nil {
			return 1
		}
		time.Sleep(time.Hour)
		return 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("unix", *socket)
	if err != nil {
		return 1
	}
	f := startFake(ln)
	<-ctx.Done()
	f.Close()
	return 0
}

// fakeServer serves the proxy protocol, reporting every configured check
// healthy. Updates receives every config set it is sent, if there is room.
type fakeServer struct {
	Updates chan []messages.Config

	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

// startFake serves on ln until Close.
func startFake(ln net.Listener) *fakeServer {
	f := &fakeServer{ln: ln, Updates: make(chan []messages.Config, 10)}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, conn)
			f.mu.Unlock()
			f.wg.Add(1)
			go f.serve(conn)
		}
	}()
	return f
}

// serve answers one client.
func (f *fakeServer) serve(conn net.Conn) {
	defer f.wg.Done()
	defer conn.Close()
	write := func(msg any) {
		line, _ := messages.EncodeLine(msg)
		conn.Write(line)
	}
	write(&messages.Ready{})
	var configs []messages.Config
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		msg, err := messages.DecodeLine(sc.Bytes())
		switch m := msg.(type) {
		case *messages.UpdateConfigs:
			configs = m.Configs
			select {
			case f.Updates <- configs:
			default:
			}
			write(&messages.NotificationBatch{Notifications: healthy(configs)})
		case *messages.RequestStatus:
			write(&messages.StatusResponse{Statuses: healthy(configs)})
		default:
			write(&messages.Error{Message: "fake: unexpected line: " +
				errString(err)})
		}
	}
}

// Close stops serving and waits for the fake's goroutines.
func (f *fakeServer) Close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// healthy returns a healthy status for each config.
func healthy(configs []messages.Config) []messages.CheckStatus {
	var out []messages.CheckStatus
	for _, c := range configs {
		out = append(out, messages.CheckStatus{ID: c.ID, Status: messages.Status{
			State:     messages.StateHealthy,
			Message:   "fake: " + c.String(),
			LastCheck: time.Now(),
			Successes: 1,
		}})
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
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

// useFake makes servers that tests start be the fake in mode.
func useFake(t *testing.T, mode string) {
	t.Helper()
	t.Setenv(fakeEnv, mode)
	// Under -race a binary sleeps 1s at exit by default; the fake need not.
	t.Setenv("GORACE", "atexit_sleep_ms=0")
}

// testExe returns the path of the running test binary, which serves as
// the fake server when fakeEnv is set.
func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
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

// socketRE finds the socket path in the demo's header.
var socketRE = regexp.MustCompile(`server socket (\S+)`)

func TestRunStartsServer(t *testing.T) {
	useFake(t, "serve")
	o := defaultOptions()
	o.Server = testExe(t)
	o.FlapPeriod = time.Hour
	out, stop := startRun(t, o)

	waitFor(t, "every check to turn healthy", func() bool {
		return strings.Count(out.String(), "unknown -> healthy") == 8
	})
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}

	got := out.String()
	if !strings.Contains(got, "status of 8 checks:") {
		t.Errorf("output lacks the final status:\n%s", got)
	}
	m := socketRE.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("output lacks the socket path:\n%s", got)
	}
	dir := filepath.Dir(m[1])
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temp dir %s still there after run: stat: %v", dir, err)
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
	o := defaultOptions()
	o.Socket = socket
	o.Server = "/nonexistent/must-not-be-started"
	out, stop := startRun(t, o)

	waitFor(t, "every check to turn healthy", func() bool {
		return strings.Count(out.String(), "unknown -> healthy") == 8
	})
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}

	// The demo's checks, then an empty set that removes them.
	if got := len(<-f.Updates); got != 8 {
		t.Errorf("first update has %d configs, want 8", got)
	}
	if got := len(<-f.Updates); got != 0 {
		t.Errorf("last update has %d configs, want 0", got)
	}
}

func TestOpenSessionFails(t *testing.T) {
	tests := []struct {
		name    string
		fake    string // fakeEnv's value; "" leaves it unset
		server  string // "" means the test binary
		wantErr string
	}{
		{
			name:    "missing binary",
			server:  "/nonexistent/healthcheck-server",
			wantErr: "run `make demo`",
		},
		{
			name:    "server exits",
			fake:    "exit",
			wantErr: "exited before accepting connections (exit status 3)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fake != "" {
				useFake(t, tt.fake)
			}
			o := defaultOptions()
			o.Server = tt.server
			if o.Server == "" {
				o.Server = testExe(t)
			}
			s, err := openSession(context.Background(), o)
			if err == nil {
				s.Close()
				t.Fatalf("openSession succeeded, want error %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("openSession: got %q, want it to contain %q",
					err, tt.wantErr)
			}
		})
	}
}

func TestStopKillsHungServer(t *testing.T) {
	useFake(t, "hang")
	socket := filepath.Join(t.TempDir(), "hc.sock")
	s, err := startServer(testExe(t), socket)
	if err != nil {
		t.Fatal(err)
	}
	// Once the socket accepts, the fake ignores SIGTERM.
	conn, err := dialSocket(context.Background(), socket, s.exited)
	if err != nil {
		s.Stop(0)
		t.Fatal(err)
	}
	conn.Close()

	err = s.Stop(100 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed it") {
		t.Errorf("Stop: got %v, want it to report killing the server", err)
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
