package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

// cfWait bounds every wait of these tests for something to happen.
const cfWait = 10 * time.Second

func TestParseChecks(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		data      string
		wantLines []int
		// errLine and errText describe an error of the whole file.
		errLine int
		errText string
	}{
		{
			name:      "json list",
			file:      "c.json",
			data:      "[\n  {\"id\": 1},\n\n  {\"id\":\n 2} ,\n 3]\n",
			wantLines: []int{2, 4, 6},
		},
		{
			name: "json empty list",
			file: "c.json",
			data: "[]",
		},
		{
			name:    "json syntax error",
			file:    "c.json",
			data:    "[\n{\"id\": 1},\n{\"id\" 2}\n]",
			errLine: 3, errText: "after object key",
		},
		{
			name:    "json cut short",
			file:    "c.json",
			data:    "[\n{\"id\": 1},\n",
			errLine: 3, errText: "unexpected end",
		},
		{
			name:    "json object, not a list",
			file:    "c.JSON",
			data:    "\n\n  {\"checks\": []}",
			errLine: 3, errText: "want a list of checks",
		},
		{
			name:    "json trailing data",
			file:    "c.json",
			data:    "[]\n\n[]",
			errLine: 3, errText: "after the list",
		},
		{
			name:    "empty file",
			file:    "c.json",
			data:    " \n",
			errLine: 1, errText: "empty",
		},
		{
			name:      "yaml list",
			file:      "c.yaml",
			data:      "# checks\n- id: 1\n  port: 80\n\n- {id: 2}\n-\n  id: 3\n",
			wantLines: []int{2, 5, 7},
		},
		{
			name:      "yaml flow list in a .yml file",
			file:      "c.yml",
			data:      "[{id: 1},\n {id: 2}]",
			wantLines: []int{1, 2},
		},
		{
			name:    "yaml syntax error",
			file:    "c.yaml",
			data:    "- id: 1\n  port: 80\n - id: 2\n",
			errLine: 3, errText: "did not find expected",
		},
		{
			name:    "yaml bad indent far from the list's start",
			file:    "c.yaml",
			data:    "# checks\n- id: 1\n  port: 80\n- id: 2\n port: 81\n- id: 3\n",
			errLine: 5, errText: "did not find expected",
		},
		{
			name: "yaml unclosed flow list",
			file: "c.yaml",
			// Line 2 lacks its comma.
			data:    "[{id: 1},\n {id: 2}\n {id: 3}]\n",
			errLine: 2, errText: "did not find expected",
		},
		{
			name:    "yaml mapping, not a list",
			file:    "c.yaml",
			data:    "# checks\nchecks:\n  - id: 1\n",
			errLine: 2, errText: "want a list of checks",
		},
		{
			name:    "yaml comments only",
			file:    "c.yaml",
			data:    "# nothing yet\n",
			errLine: 1, errText: "no list",
		},
		{
			name:    "yaml second document",
			file:    "c.yaml",
			data:    "- id: 1\n---\n- id: 2\n",
			errLine: 2, errText: "second YAML document",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks, err := parseChecks(tt.file, []byte(tt.data))
			if tt.errText != "" {
				var le *lineError
				if !errors.As(err, &le) {
					t.Fatalf("error = %v, want a *lineError", err)
				}
				if le.Line != tt.errLine || !strings.Contains(le.Error(), tt.errText) {
					t.Errorf("error = %q at line %d, want %q at line %d",
						le.Error(), le.Line, tt.errText, tt.errLine)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			var lines []int
			for _, c := range checks {
				lines = append(lines, c.line)
			}
			if !slices.Equal(lines, tt.wantLines) {
				t.Errorf("lines = %v, want %v", lines, tt.wantLines)
			}
		})
	}
}

// FuzzParseChecks feeds the -config parsers arbitrary files: they must
// not panic, must place every check and every error on a line of the
// file, and must give fileUpdate checks it can take.
func FuzzParseChecks(f *testing.F) {
	for _, seed := range []string{
		"[]", "[\n" + goodCheck(1) + ",\n{\"id\": 2}\n]", "{\"id\": 1}", "[1, [2], null]",
		"[\n{\"id\" 2}]", "- id: 1\n  port: 80\n - id: 2\n", "- {id: 1, 3: x}\n",
		"- &a {id: 1}\n- *a\n", "- id: 1\n---\n- id: 2\n", "# none\n",
		"- {port: .nan, interval: 2001-12-14}\n", "[{id: 1},\n {id: 2}\n {id: 3}]",
		"\r0", "---", "-\n-",
	} {
		f.Add(true, []byte(seed))
		f.Add(false, []byte(seed))
	}
	f.Fuzz(func(t *testing.T, json bool, data []byte) {
		name := "c.yaml"
		if json {
			name = "c.json"
		}
		// YAML also breaks lines at a lone "\r": count it, as a bound.
		lines := 1 + bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r"))
		checks, err := parseChecks(name, data)
		if err != nil {
			var le *lineError
			if !errors.As(err, &le) || le.Line < 1 || le.Line > lines {
				t.Fatalf("error %v: want a *lineError within lines 1-%d", err, lines)
			}
			return
		}
		prev := 1
		for _, c := range checks {
			if c.line < prev || c.line > lines {
				t.Fatalf("check at line %d after line %d, file of %d lines",
					c.line, prev, lines)
			}
			prev = c.line
		}
		u := fileUpdate(checks)
		if got := len(u.Configs) + len(u.Rejected); got != len(checks) {
			t.Fatalf("%d configs and rejections for %d checks", got, len(checks))
		}
	})
}

// goodCheck is a valid check in JSON.
func goodCheck(id int) string {
	b, _ := json.Marshal(map[string]any{
		"id": id, "checker_type": "tcp", "ip": "127.0.0.1", "port": 9,
	})
	return string(b)
}

func TestFileUpdateRejectsChecksAlone(t *testing.T) {
	tests := []struct {
		name string
		file string
		data string
		// rejected maps the line of each rejected check to a fragment of
		// its error.
		rejected map[int]string
	}{
		{
			name: "json",
			file: "c.json",
			data: "[\n" + goodCheck(1) + ",\n" +
				`{"id": 2, "checker_type": "tcp", "ip": "127.0.0.1", "port": 0}` + ",\n" +
				goodCheck(3) + ",\n" +
				goodCheck(1) + ",\n" +
				`{"id": 4, "checker_type": "tcp", "ip": "127.0.0.1", "port": 9, "colour": 1}` +
				"\n]\n",
			rejected: map[int]string{3: "port", 5: "duplicate", 6: "unknown field"},
		},
		{
			name: "yaml",
			file: "c.yaml",
			data: "- {id: 1, checker_type: tcp, ip: 127.0.0.1, port: 9}\n" +
				"- id: 2\n  checker_type: tcp\n  ip: 127.0.0.1\n  port: 0\n" +
				"- {id: 3, checker_type: tcp, ip: 127.0.0.1, port: 9}\n" +
				"- {id: 4, checker_type: tcp, ip: 127.0.0.1, port: .nan}\n" +
				"- {id: 5, checker_type: tcp, ip: 127.0.0.1, port: 9, 7: x}\n" +
				"- {id: 6, checker_type: tcp, ip: 127.0.0.1, port: 9, interval: 2001-12-14}\n",
			rejected: map[int]string{
				2: "port", 7: "JSON", 8: `unknown field "7"`, 9: "interval",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks, err := parseChecks(tt.file, []byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			u := fileUpdate(checks)
			var ids []uint64
			for _, c := range u.Configs {
				ids = append(ids, c.ID)
			}
			if want := []uint64{1, 3}; !slices.Equal(ids, want) {
				t.Errorf("configs = %v, want %v", ids, want)
			}
			got := make(map[int]string)
			for _, ce := range u.Rejected {
				got[checks[ce.Index].line] = ce.Error()
			}
			if len(got) != len(tt.rejected) {
				t.Errorf("rejected = %v, want lines %v", got, tt.rejected)
			}
			for line, frag := range tt.rejected {
				if !strings.Contains(got[line], frag) {
					t.Errorf("rejection at line %d = %q, want it to mention %q",
						line, got[line], frag)
				}
			}
		})
	}
}

func TestCheckSources(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantEngine string
		wantErr    bool
	}{
		{"engine alone", []string{"-engine", "/e.sock"}, "/e.sock", false},
		{"default engine", nil, defaultConfig().engine, false},
		{"config ignores the default engine", []string{"-config", "c.yaml"}, "", false},
		{"config with an empty engine", []string{"-config", "c.yaml", "-engine", ""}, "", false},
		{"config and engine", []string{"-config", "c.yaml", "-engine", "/e.sock"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			cfg.register(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := cfg.checkSources(fs)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want one: %t", err, tt.wantErr)
			}
			if err == nil && cfg.engine != tt.wantEngine {
				t.Errorf("engine = %q, want %q", cfg.engine, tt.wantEngine)
			}
		})
	}
}

func TestRunRejectsConfigWithEngine(t *testing.T) {
	var stderr bytes.Buffer
	args := []string{"-config", "c.yaml", "-engine", "/e.sock"}
	if got := run(args, &stderr); got != 2 {
		t.Errorf("exit status = %d, want 2", got)
	}
	if !strings.Contains(stderr.String(), "mutually exclusive") {
		t.Errorf("stderr = %q, want it to say why", stderr.String())
	}
}

func TestRunFailsOnInvalidConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checks.json")
	writeFile(t, path, "[\n"+goodCheck(1)+",\n{\"id\": 2,,}\n]\n")
	var stderr bytes.Buffer
	args := []string{"-config", path, "-proxy_socket", "", "-metrics_addr", ""}
	if got := run(args, &stderr); got != 1 {
		t.Errorf("exit status = %d, want 1", got)
	}
	if !strings.Contains(stderr.String(), "line 3") {
		t.Errorf("stderr = %q, want it to name line 3", stderr.String())
	}
}

// logLines collects a logger's JSON lines; it is safe for concurrent use.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
	tb    io.Writer
}

func newLogLines(t *testing.T) *logLines {
	return &logLines{tb: zerolog.NewTestWriter(t)}
}

func (l *logLines) Write(p []byte) (int, error) {
	var m map[string]any
	if err := json.Unmarshal(p, &m); err == nil {
		l.mu.Lock()
		l.lines = append(l.lines, m)
		l.mu.Unlock()
	}
	return l.tb.Write(p)
}

func (l *logLines) logger() zerolog.Logger {
	return zerolog.New(l).Level(zerolog.DebugLevel)
}

// matching returns the lines with the message msg and every field of
// fields.
func (l *logLines) matching(msg string, fields map[string]any) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, m := range l.lines {
		if m["message"] != msg {
			continue
		}
		ok := true
		for k, v := range fields {
			ok = ok && m[k] == v
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// waitCount waits until n lines match, and returns them.
func (l *logLines) waitCount(t *testing.T, n int, msg string,
	fields map[string]any) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(cfWait)
	for {
		if got := l.matching(msg, fields); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d log lines %q with %v within %s", n, msg, fields, cfWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile replaces path with a new file holding data, as editors and
// deployment tools do.
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, data)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// checksYAML returns a YAML file of valid checks with ids.
func checksYAML(ids ...int) string {
	var b strings.Builder
	b.WriteString("# checks\n")
	for _, id := range ids {
		b.WriteString("- " + goodCheck(id) + "\n")
	}
	return b.String()
}

// watchedFile is a configFile whose watch loop runs for a test.
type watchedFile struct {
	f       *configFile
	hup     chan os.Signal
	updates chan *messages.UpdateConfigs
	logs    *logLines
}

func startWatchedFile(t *testing.T, path string) *watchedFile {
	t.Helper()
	w := &watchedFile{
		hup:     make(chan os.Signal, 1),
		updates: make(chan *messages.UpdateConfigs, 100),
		logs:    newLogLines(t),
	}
	f, err := openConfigFile(path, w.logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	f.debounce, f.maxWait = 20*time.Millisecond, 500*time.Millisecond
	w.f = f
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.watch(ctx, w.hup, func(u *messages.UpdateConfigs) { w.updates <- u })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return w
}

// next returns the IDs of the next update sent.
func (w *watchedFile) next(t *testing.T) []uint64 {
	t.Helper()
	select {
	case u := <-w.updates:
		var ids []uint64
		for _, c := range u.Configs {
			ids = append(ids, c.ID)
		}
		return ids
	case <-time.After(cfWait):
		t.Fatalf("no update within %s", cfWait)
		return nil
	}
}

// none fails if an update was sent.
func (w *watchedFile) none(t *testing.T) {
	t.Helper()
	select {
	case u := <-w.updates:
		t.Fatalf("unexpected update with %d configs", len(u.Configs))
	default:
	}
}

func TestConfigFileReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checks.yaml")
	writeFile(t, path, checksYAML(1, 2))
	w := startWatchedFile(t, path)
	if got, want := len(w.f.first.Configs), 2; got != want {
		t.Fatalf("first load has %d configs, want %d", got, want)
	}

	// Each step waits for its outcome, so the steps do not overlap.
	step := func(name string, want []uint64, change func()) {
		t.Helper()
		change()
		if got := w.next(t); !slices.Equal(got, want) {
			t.Errorf("%s: update = %v, want %v", name, got, want)
		}
	}
	step("written in place", []uint64{1, 2, 3}, func() {
		writeFile(t, path, checksYAML(1, 2, 3))
	})
	step("replaced", []uint64{4}, func() { replaceFile(t, path, checksYAML(4)) })
	step("removed and created", []uint64{5}, func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, checksYAML(5))
	})

	// An invalid file is logged with its line and changes nothing.
	writeFile(t, path, checksYAML(5)+"- id: 6\n bad indent\n")
	w.logs.waitCount(t, 1, "config_file_invalid_keeping_checks",
		map[string]any{"line": float64(4), "reason": "file_changed"})
	w.none(t)

	// A change elsewhere in the directory reloads nothing.
	step("fixed", []uint64{5, 6}, func() { writeFile(t, path, checksYAML(5, 6)) })
	unchanged := len(w.logs.matching("config_file_unchanged", nil))
	writeFile(t, filepath.Join(dir, "other.txt"), "x")
	w.logs.waitCount(t, unchanged+1, "config_file_unchanged", nil)
	w.none(t)

	// SIGHUP reloads even an unchanged file.
	step("sighup", []uint64{5, 6}, func() { w.hup <- syscall.SIGHUP })
}

func TestConfigFileFollowsSymlinkTarget(t *testing.T) {
	linkDir, targetDir := t.TempDir(), t.TempDir()
	target := filepath.Join(targetDir, "real.yaml")
	writeFile(t, target, checksYAML(1))
	path := filepath.Join(linkDir, "checks.yaml")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	w := startWatchedFile(t, path)

	writeFile(t, target, checksYAML(1, 2))
	if got, want := w.next(t), []uint64{1, 2}; !slices.Equal(got, want) {
		t.Errorf("update after editing the link's target = %v, want %v", got, want)
	}
}

func TestConfigFileLogsRejectedChecksWithLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checks.json")
	writeFile(t, path, "[\n"+goodCheck(1)+",\n"+
		`{"id": 2, "checker_type": "tcp", "ip": "127.0.0.1"}`+",\n"+
		`{"checker_type": "tcp"}`+"\n]\n")
	w := startWatchedFile(t, path)
	if got := len(w.f.first.Configs); got != 1 {
		t.Errorf("first load has %d configs, want 1", got)
	}
	rej := w.logs.matching("config_file_check_rejected", nil)
	if len(rej) != 2 {
		t.Fatalf("rejections logged = %v, want 2", rej)
	}
	if rej[0]["line"] != float64(3) || rej[0]["id"] != float64(2) ||
		!strings.Contains(rej[0]["error"].(string), "port") {
		t.Errorf("first rejection = %v, want id 2 at line 3 about the port", rej[0])
	}
	if rej[1]["line"] != float64(4) || rej[1]["index"] != float64(2) {
		t.Errorf("second rejection = %v, want index 2 at line 4", rej[1])
	}

	// The rejected checks are logged again on each reload.
	w.hup <- syscall.SIGHUP
	w.next(t)
	if got := len(w.logs.matching("config_file_check_rejected", nil)); got != 4 {
		t.Errorf("rejections logged after a reload = %d, want 4", got)
	}
}

// hcClient is a JSON-lines client of the server's socket.
type hcClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialServer(t *testing.T, path string) *hcClient {
	t.Helper()
	deadline := time.Now().Add(cfWait)
	for {
		conn, err := net.Dial("unix", path)
		if err == nil {
			t.Cleanup(func() { conn.Close() })
			return &hcClient{conn: conn, r: bufio.NewReader(conn)}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v", path, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *hcClient) send(t *testing.T, msg any) {
	t.Helper()
	line, err := messages.EncodeLine(msg)
	if err != nil {
		t.Fatal(err)
	}
	c.writeLine(t, string(line))
}

// writeLine writes a line as it is.
func (c *hcClient) writeLine(t *testing.T, line string) {
	t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(cfWait))
	if _, err := c.conn.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
}

// configure sends the server a check's config, in JSON, and waits until
// the server's status lists check id: the server then runs it.
func (c *hcClient) configure(t *testing.T, id uint64, config string) {
	t.Helper()
	c.writeLine(t, `{"type":"update_configs","configs":[`+config+"]}\n")
	if ids := c.statusIDs(t); !slices.Contains(ids, id) {
		t.Fatalf("checks %v after the update, want %d among them", ids, id)
	}
}

// statusIDs asks for every check's status and returns their IDs.
func (c *hcClient) statusIDs(t *testing.T) []uint64 {
	t.Helper()
	var ids []uint64
	for _, s := range c.statuses(t) {
		ids = append(ids, s.ID)
	}
	return ids
}

// statuses asks for every check's status and returns it, skipping the
// notification batches that come in between.
func (c *hcClient) statuses(t *testing.T) []messages.CheckStatus {
	t.Helper()
	c.send(t, &messages.RequestStatus{})
	c.conn.SetReadDeadline(time.Now().Add(cfWait))
	for {
		line, err := c.r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("reading the status: %v", err)
		}
		msg, err := messages.DecodeLine(line)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if r, ok := msg.(*messages.StatusResponse); ok {
			return r.Statuses
		}
	}
}

// TestServerStandalone runs the server on a -config file under a fake
// systemd: the default -engine is ignored, the file's checks run, a
// change and SIGHUP reload them, and systemd hears READY, WATCHDOG and
// STOPPING in order.
func TestServerStandalone(t *testing.T) {
	sd := newFakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "100000")
	dir := shortTempDir(t)
	path := filepath.Join(dir, "checks.yaml")
	sock := filepath.Join(dir, "hc.sock")
	writeFile(t, path, checksYAML(1, 2)+"- {id: 3, checker_type: tcp}\n")

	logs := newLogLines(t)
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"-config", path, "-proxy_socket", sock,
			"-allow_shutdown", "-dry_run", "-metrics_addr", "",
			"-log_level", "debug"}, logs)
	}()

	if got := sd.next(t); got != "READY=1" {
		t.Fatalf("first state = %q, want READY=1", got)
	}
	logs.waitCount(t, 1, "config_file_check_rejected",
		map[string]any{"line": float64(4), "id": float64(3)})
	c := dialServer(t, sock)
	if got, want := c.statusIDs(t), []uint64{1, 2}; !slices.Equal(got, want) {
		t.Errorf("checks = %v, want %v", got, want)
	}
	if got := sd.next(t); got != "WATCHDOG=1" {
		t.Errorf("state after READY = %q, want WATCHDOG=1", got)
	}

	replaceFile(t, path, checksYAML(2, 7))
	logs.waitCount(t, 1, "config_file_loaded",
		map[string]any{"reason": "file_changed"})
	if got, want := c.statusIDs(t), []uint64{2, 7}; !slices.Equal(got, want) {
		t.Errorf("checks after the change = %v, want %v", got, want)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.waitCount(t, 1, "config_file_loaded", map[string]any{"reason": "sighup"})

	c.send(t, &messages.Shutdown{})
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit status = %d, want 0", code)
		}
	case <-time.After(cfWait):
		t.Fatal("the server did not stop")
	}
	states := sd.drain(t)
	if len(states) == 0 || states[len(states)-1] != "STOPPING=1" {
		t.Fatalf("states at the end = %q, want STOPPING=1 last", states)
	}
	for _, s := range states[:len(states)-1] {
		if s != "WATCHDOG=1" {
			t.Errorf("state before STOPPING = %q, want WATCHDOG=1", s)
		}
	}
}
