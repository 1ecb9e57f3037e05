package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
)

const (
	oneCheck = `{"checks": [{"type": "tcp", "ip": "127.0.0.1", "port": 80}]}`
	twoYAML  = "checks:\n- {type: tcp, ip: 127.0.0.1, port: 80}\n" +
		"- {type: http, ip: 127.0.0.1, port: 8080, send: /healthz}\n"
	editedYAML = "checks:\n- {type: tcp, ip: 127.0.0.1, port: 80}\n" +
		"- {type: http, ip: 127.0.0.1, port: 8080, send: /ready}\n"
	badYAML = "checks:\n- {type: tcp, ip: 127.0.0.1, port: 80}\n" +
		"- {type: http, ip: 127.0.0.1, prot: 8080}\n"
)

// newTestSim returns a simulator of the checks file at path, logging to
// logs and printing to out.
func newTestSim(t *testing.T, path string, logs, out *syncBuffer) *sim {
	t.Helper()
	s, err := newSim(options{config: path}, out, zerolog.New(logs))
	if err != nil {
		t.Fatalf("newSim: %v", err)
	}
	return s
}

// TestReload checks that reload serves a changed file and logs what
// changed, and that an invalid file is reported and changes nothing.
func TestReload(t *testing.T) {
	path := writeChecks(t, "checks.yaml", twoYAML)
	var logs, out syncBuffer
	s := newTestSim(t, path, &logs, &out)
	steps := []struct {
		name    string
		content string
		wantErr string
		serving int
		wantLog string
	}{
		{"edited", editedYAML, "", 2,
			`"reason":"test","file":"` + path + `","serving":2,"added":0,` +
				`"removed":0,"changed":1,"unchanged":1`},
		{"invalid", badYAML, "check 1: prot: unknown field", 2,
			`"reason":"test","serving":2,"message":"reload_failed_keeping_checks"`},
		{"none", "checks: []", "", 0, `"removed":2`},
	}
	for _, step := range steps {
		replaceFile(t, path, step.content)
		err := s.reload("test")
		if step.wantErr == "" && err != nil {
			t.Errorf("%s: reload = %v", step.name, err)
		}
		if step.wantErr != "" && (err == nil || !strings.Contains(err.Error(),
			step.wantErr)) {
			t.Errorf("%s: reload = %v, want it to contain %q", step.name, err,
				step.wantErr)
		}
		if got := len(s.srv.Configs()); got != step.serving {
			t.Errorf("%s: serving %d checks, want %d", step.name, got, step.serving)
		}
		if !strings.Contains(logs.String(), step.wantLog) {
			t.Errorf("%s: logs lack %s:\n%s", step.name, step.wantLog, &logs)
		}
	}
}

// TestWatch checks that the watch loop reloads the file when an editor
// replaces it, when it is rewritten in place, and on SIGHUP, and that an
// invalid file keeps the served checks.
func TestWatch(t *testing.T) {
	path := writeChecks(t, "checks.json", oneCheck)
	var logs, out syncBuffer
	s := newTestSim(t, path, &logs, &out)
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal)
	done := make(chan error)
	go func() { done <- s.watch(ctx, hup) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
	}()

	// At least: a slow machine may split one write's events in two.
	updates := func(n uint64) func(*enginesim.Snapshot) bool {
		return func(sn *enginesim.Snapshot) bool { return sn.Counts.Updates >= n }
	}
	// The watch may start after the first write below; SIGHUP, which the
	// loop only reads once it runs, makes sure it watches.
	hup <- syscall.SIGHUP
	waitUpdates(t, s, updates(2))

	replaceFile(t, path, strings.Replace(twoJSON, "8080", "8081", 1))
	waitUpdates(t, s, updates(3))
	if got := len(s.srv.Configs()); got != 2 {
		t.Errorf("after replacing the file: serving %d, want 2", got)
	}

	if err := os.WriteFile(path, []byte(oneCheck), 0o600); err != nil {
		t.Fatal(err)
	}
	waitUpdates(t, s, updates(4))

	replaceFile(t, path, `{"checks": [{"type": "tcp"}]}`)
	waitForText(t, &logs, `"reason":"file_changed","serving":1,`+
		`"message":"reload_failed_keeping_checks"`)
	if got := len(s.srv.Configs()); got != 1 {
		t.Errorf("after an invalid file: serving %d, want 1", got)
	}
	if !strings.Contains(logs.String(), `check 0: ip: missing`) {
		t.Errorf("logs lack the reason:\n%s", &logs)
	}

	hup <- syscall.SIGHUP
	waitForText(t, &logs, `"reason":"sighup","serving":1,`)
}

const twoJSON = `{"checks": [
  {"type": "tcp", "ip": "127.0.0.1", "port": 80},
  {"type": "http", "ip": "127.0.0.1", "port": 8080}
]}`

// waitUpdates waits for cond on s's Server.
func waitUpdates(t *testing.T, s *sim, cond func(*enginesim.Snapshot) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	if err := s.srv.WaitFor(ctx, cond); err != nil {
		t.Fatalf("waiting for a reload: %v; counts %+v", err, s.srv.Counts())
	}
}

// TestServe runs the simulator as main does, without signals: it serves
// the file, prints notifications, and logs its counts when stopped.
func TestServe(t *testing.T) {
	path := writeChecks(t, "checks.json", oneCheck)
	socket := filepath.Join(filepath.Dir(path), "run", "engine.sock")
	var logs, out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		o := options{socket: socket, config: path}
		done <- serve(ctx, o, nil, &out, zerolog.New(&logs))
	}()

	waitForText(t, &logs, "engine_listening")
	client := bridge.NewEngineClient(socket, waitBound)
	checks, err := client.Healthchecks(ctx)
	if err != nil {
		t.Fatalf("Healthchecks: %v", err)
	}
	if len(checks.Configs) != 1 {
		t.Fatalf("fetched %d configs, want 1", len(checks.Configs))
	}
	var id uint64
	for k := range checks.Configs {
		id = k
	}
	err = client.HealthState(ctx, []messages.CheckStatus{
		{ID: id, Status: messages.Status{State: messages.StateHealthy, Message: "up"}},
		{ID: 1, Status: messages.Status{State: messages.StateUnhealthy}},
	})
	if err != nil {
		t.Fatalf("HealthState: %v", err)
	}
	waitForText(t, &out, `id=1 state=unhealthy message="" unknown_id=true`)
	if want := `state=healthy message="up"`; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, &out)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	want := `"healthchecks_calls":1,"healthstate_calls":1,"notifications":2,` +
		`"unknown_ids":1`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("logs lack %s:\n%s", want, &logs)
	}
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}
