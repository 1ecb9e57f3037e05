package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-nope"}, "flag provided but not defined"},
		{"bad log level", []string{"-log_level", "loud"}, "-log_level"},
		{"bad log format", []string{"-log_format", "xml"}, "-log_format"},
		{"bad duration", []string{"-batch_delay", "soon"}, "batch_delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := run(tt.args, &stderr); got != 2 {
				t.Errorf("exit status = %d, want 2", got)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr = %q, want it to mention %q", stderr.String(), tt.want)
			}
		})
	}
}

func TestRunFailsOnBadSocketMode(t *testing.T) {
	var stderr bytes.Buffer
	args := []string{"-engine", "", "-metrics_addr", "",
		"-proxy_socket", t.TempDir() + "/s", "-socket_mode", "999"}
	if got := run(args, &stderr); got != 1 {
		t.Errorf("exit status = %d, want 1", got)
	}
	if !strings.Contains(stderr.String(), "-socket_mode") {
		t.Errorf("stderr = %q, want it to name -socket_mode", stderr.String())
	}
}

// helperArgsEnv holds the server's arguments, as a JSON list, when the
// test binary runs as TestHelperServer's server.
const helperArgsEnv = "HC_HELPER_SERVER_ARGS"

// TestHelperServer is no test of its own: it runs the server in a child
// process of the test binary for the tests that kill one.
func TestHelperServer(t *testing.T) {
	env := os.Getenv(helperArgsEnv)
	if env == "" {
		t.Skip("runs only as the child of a test that kills a server")
	}
	var args []string
	if err := json.Unmarshal([]byte(env), &args); err != nil {
		t.Fatalf("%s: %v", helperArgsEnv, err)
	}
	holdHangups()
	os.Exit(run(args, os.Stderr))
}

// child is a server running in a child process.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited
}

// startChildServer runs the server with args in a child process. Its log
// is printed if the test fails; it is stopped when the test ends.
func startChildServer(t *testing.T, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServer$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	list, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(cmd.Env, helperArgsEnv+"="+string(list))
	log, err := os.CreateTemp(t.TempDir(), "server-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close() // The child has its own descriptor.
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if !c.wait() {
			cmd.Process.Kill()
			<-c.done
		}
		if b, _ := os.ReadFile(log.Name()); t.Failed() {
			t.Logf("server %d log:\n%s", cmd.Process.Pid, b)
		}
	})
	return c
}

// wait reports whether the child exits within cfWait.
func (c *child) wait() bool {
	select {
	case <-c.done:
		return true
	case <-time.After(cfWait):
		return false
	}
}

// kill kills the child at once, as the OOM killer or a power cut would:
// it drains nothing and writes no state file on the way out.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if !c.wait() {
		t.Fatalf("server %d still runs after SIGKILL", c.cmd.Process.Pid)
	}
}

// pingBackend answers each line with PONG, or, once hung, holds every
// connection without answering, as a backend too busy to reply does.
type pingBackend struct {
	ln   net.Listener
	hung atomic.Bool
	quit chan struct{}
	wg   sync.WaitGroup
}

func startPingBackend(t *testing.T) *pingBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &pingBackend{ln: ln, quit: make(chan struct{})}
	b.wg.Go(b.accept)
	t.Cleanup(func() {
		close(b.quit)
		ln.Close()
		b.wg.Wait()
	})
	return b
}

// port is the backend's port on 127.0.0.1.
func (b *pingBackend) port() int { return b.ln.Addr().(*net.TCPAddr).Port }

func (b *pingBackend) accept() {
	for {
		conn, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Go(func() { b.serve(conn) })
	}
}

func (b *pingBackend) serve(conn net.Conn) {
	defer conn.Close()
	if b.hung.Load() {
		<-b.quit
		return
	}
	conn.SetDeadline(time.Now().Add(cfWait))
	if _, err := bufio.NewReader(conn).ReadString('\n'); err == nil {
		conn.Write([]byte("PONG\n"))
	}
}

// savedStates reads the states in a state file by check ID; a missing
// or half-written file gives none.
func savedStates(path string) map[uint64]messages.State {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var f struct {
		Checks []struct {
			ID     uint64          `json:"id"`
			Status messages.Status `json:"status"`
		} `json:"checks"`
	}
	if json.Unmarshal(b, &f) != nil {
		return nil
	}
	out := make(map[uint64]messages.State)
	for _, c := range f.Checks {
		out[c.ID] = c.Status.State
	}
	return out
}

// TestStateFileSurvivesKill kills a server, with SIGKILL, after its
// periodic state file writes: a new server whose probes cannot finish
// starts with the states they saved.
func TestStateFileSurvivesKill(t *testing.T) {
	backend := startPingBackend(t)
	dir := shortTempDir(t)
	ids := []uint64{1, 2, 3}
	var checks []string
	for _, id := range ids {
		checks = append(checks, fmt.Sprintf(`{"id":%d,"checker_type":"tcp",`+
			`"ip":"127.0.0.1","port":%d,"send":"PING\n","receive":"PONG",`+
			`"interval":"100ms","timeout":"1m"}`,
			id, backend.port()))
	}
	config := filepath.Join(dir, "checks.json")
	writeFile(t, config, "["+strings.Join(checks, ",")+"]")
	state := filepath.Join(dir, "state.json")
	sock := filepath.Join(dir, "hc.sock")
	args := []string{"-config", config, "-proxy_socket", sock,
		"-metrics_addr", "", "-state_file", state,
		"-state_save_interval", "100ms", "-restore_policy", "confirm"}

	first := startChildServer(t, args...)
	waitUntil(t, "a state file with every check healthy", func() bool {
		saved := savedStates(state)
		for _, id := range ids {
			if saved[id] != messages.StateHealthy {
				return false
			}
		}
		return true
	})
	first.kill(t)
	killed := time.Now()

	backend.hung.Store(true)
	startChildServer(t, args...)
	c := dialServer(t, sock)
	var got []messages.CheckStatus
	waitUntil(t, "the new server to run every check", func() bool {
		got = c.statuses(t)
		return len(got) == len(ids)
	})
	for _, cs := range got {
		if cs.Status.State != messages.StateHealthy {
			t.Errorf("check %d after the kill: %v, want healthy restored",
				cs.ID, cs.Status.State)
		}
		if !cs.Status.LastCheck.Before(killed) {
			t.Errorf("check %d: last probe %v, after the kill at %v; want the "+
				"saved one", cs.ID, cs.Status.LastCheck, killed)
		}
	}
}

// The flags of Seesaw's seesaw_healthcheck keep its names and defaults,
// so that its command lines run unchanged.
func TestSeesawFlagDefaults(t *testing.T) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("healthcheck-server", flag.ContinueOnError)
	cfg.register(fs)
	for name, want := range map[string]string{
		"batch_delay":     "100ms",
		"batch_size":      "100",
		"channel_size":    "1000",
		"dry_run":         "false",
		"engine":          "/var/run/seesaw/engine/engine.sock",
		"fetch_interval":  "15s",
		"max_failures":    "10",
		"notify_interval": "15s",
		"retry_delay":     "2s",
	} {
		switch f := fs.Lookup(name); {
		case f == nil:
			t.Errorf("-%s is not defined", name)
		case f.DefValue != want:
			t.Errorf("-%s defaults to %q, want %q", name, f.DefValue, want)
		}
	}
}

// With -exit_on_max_failures the server exits with status 1 once
// -max_failures HealthState calls failed in a row, as Seesaw's does.
func TestExitOnMaxFailures(t *testing.T) {
	backend := startPingBackend(t)
	dir := t.TempDir()
	socket := filepath.Join(dir, "hc.sock")
	logs := newLogLines(t)
	exited := make(chan int, 1)
	go func() {
		exited <- run([]string{
			"-engine", filepath.Join(dir, "no-engine.sock"),
			"-proxy_socket", socket, "-metrics_addr", "",
			"-max_failures", "2", "-retry_delay", "10ms",
			"-exit_on_max_failures",
		}, logs)
	}()

	// A check from the socket gives the bridge a status to send.
	dialServer(t, socket).writeLine(t, configLine([2]int{1, backend.port()}))

	select {
	case code := <-exited:
		if code != 1 {
			t.Errorf("exit status = %d, want 1", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not exit")
	}
	failed := logs.waitCount(t, 1, "server_failed", nil)
	if err, _ := failed[0]["error"].(string); !strings.Contains(err,
		"2 HealthState calls failed") {
		t.Errorf("server_failed error = %q, want the failed calls", err)
	}
}

// startSocketChild starts a child server with args on a socket of its
// own, without an Engine or a metrics listener, and connects to it. It
// returns the server, its socket and the client.
func startSocketChild(t *testing.T, args ...string) (*child, string, *hcClient) {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "hc.sock")
	srv := startChildServer(t, append([]string{"-engine", "",
		"-proxy_socket", socket, "-metrics_addr", ""}, args...)...)
	return srv, socket, dialServer(t, socket)
}

// SIGTERM stops the server cleanly, with a client connected and a probe
// hanging on its backend, and SIGHUPs coming: it exits with status 0
// within the stop's bound and removes its socket.
func TestSIGTERMStopsCleanly(t *testing.T) {
	backend := startPingBackend(t)
	backend.hung.Store(true)
	srv, socket, c := startSocketChild(t)
	c.configure(t, 1, fmt.Sprintf(`{"id":1,"interval":"10ms",`+
		`"timeout":"1h","checker_type":"tcp","ip":"127.0.0.1","port":%d,`+
		`"send":"PING\n","receive":"PONG"}`, backend.port()))

	srv.cmd.Process.Signal(syscall.SIGTERM)
	// SIGHUPs all through the stop, as a reload might send, end nothing.
	hups := time.NewTicker(time.Millisecond)
	defer hups.Stop()
	deadline := time.After(stopTimeout + 5*time.Second)
	for stopped := false; !stopped; {
		select {
		case <-srv.done:
			stopped = true
		case <-hups.C:
			srv.cmd.Process.Signal(syscall.SIGHUP)
		case <-deadline:
			t.Fatalf("the server still runs %v after SIGTERM",
				stopTimeout+5*time.Second)
		}
	}
	if code := srv.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status = %d, want 0", code)
	}
	if _, err := os.Stat(socket); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after the stop: %v, want it removed", err)
	}
}

// Seesaw's glog flags are accepted, so that its command lines run
// unchanged; -v above 0 means debug unless -log_level says otherwise.
func TestSeesawGlogFlags(t *testing.T) {
	glogArgs := []string{"-log_dir=/var/log/seesaw", "-logtostderr",
		"-alsologtostderr=false", "-stderrthreshold=ERROR", "-vmodule=core=2",
		"-log_backtrace_at=core.go:1"}
	tests := []struct {
		name      string
		args      []string
		wantLevel string
	}{
		{"ignored flags", glogArgs, "info"},
		{"verbose", []string{"-v=1"}, "debug"},
		{"verbose with a level", []string{"-v=2", "-log_level=warn"}, "warn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			fs := flag.NewFlagSet("healthcheck-server", flag.ContinueOnError)
			cfg.register(fs)
			var glog glogFlags
			glog.register(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			glog.apply(fs, &cfg)
			if cfg.logLevel != tt.wantLevel {
				t.Errorf("log level = %q, want %q", cfg.logLevel, tt.wantLevel)
			}
		})
	}

	// Through run: the flags pass parsing, and the next bad flag is the
	// one named.
	var stderr bytes.Buffer
	args := append(glogArgs, "-log_level", "loud")
	if got := run(args, &stderr); got != 2 ||
		!strings.Contains(stderr.String(), "-log_level") {
		t.Errorf("run = %d, stderr %q; want 2 naming -log_level", got, stderr.String())
	}
}
