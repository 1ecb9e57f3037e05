package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
)

// testNow is the printer's clock in these tests: 18:40:02.123 local time.
var testNow = time.Date(2025, 1, 2, 18, 40, 2, 123e6, time.Local)

// The IDs of the test printer's checks.
const (
	echoID = 1 << 48
	flapID = 1<<48 + 1
	newID  = 1<<48 + 2
)

// testChecks are the test printer's checks: tcp-echo, http-flap, and
// tls-new, which is not served at first.
var testChecks = []demoCheck{
	{Name: "tcp-echo", Desc: "tcp 127.0.0.1:7", Expect: "healthy",
		Check: enginesim.Check{Interval: time.Second}},
	{Name: "http-flap", Desc: "http GET /healthz 127.0.0.1:41234",
		Expect: "flaps", Check: enginesim.Check{Interval: time.Second}},
	{Name: "tls-new", Desc: "tls 127.0.0.1:443", Expect: "healthy",
		Check: enginesim.Check{Interval: 2 * time.Second}},
}

// newTestPrinter returns a printer to a buffer serving tcp-echo and
// http-flap, with its clock stopped at testNow.
func newTestPrinter(color bool) (*printer, *bytes.Buffer) {
	var buf bytes.Buffer
	p := newPrinter(&buf, color, testChecks)
	p.now = func() time.Time { return testNow }
	p.Serve([]uint64{echoID, flapID}, testChecks[:2])
	return p, &buf
}

// status returns the status of check id in state with message, probed at
// testNow.
func status(id uint64, state messages.State, msg string) messages.CheckStatus {
	return messages.CheckStatus{ID: id, Status: messages.Status{
		State:     state,
		Message:   msg,
		LastCheck: testNow,
	}}
}

// lines returns the lines in buf, and empties it.
func lines(buf *bytes.Buffer) []string {
	defer buf.Reset()
	if buf.Len() == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
}

// checkLines fails the test unless got has a line per want, containing
// it.
func checkLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d lines %q, want %d", what, len(got), got,
			len(want))
	}
	for i := range got {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("%s: line %d: got %q, want it to contain %q",
				what, i, got[i], want[i])
		}
	}
}

func TestChangeLine(t *testing.T) {
	noTime := status(flapID, messages.StateHealthy, "ok")
	noTime.Status.LastCheck = time.Time{}
	tests := []struct {
		name string
		cs   messages.CheckStatus
		from messages.State
		want string
	}{
		{
			name: "first result",
			cs: status(flapID, messages.StateHealthy,
				"HTTP GET to 127.0.0.1:41234; got 200 OK"),
			from: messages.StateUnknown,
			want: "18:40:02.123  http-flap  " +
				"http GET /healthz 127.0.0.1:41234  " +
				"unknown -> healthy      " +
				"HTTP GET to 127.0.0.1:41234; got 200 OK",
		},
		{
			name: "shorter description and line breaks in message",
			cs: status(echoID, messages.StateUnhealthy,
				"read failed:\r\nEOF"),
			from: messages.StateHealthy,
			want: "18:40:02.123  tcp-echo   " +
				"tcp 127.0.0.1:7                    " +
				"healthy -> unhealthy    " +
				"read failed:  EOF",
		},
		{
			name: "unknown check",
			cs:   status(9, messages.StateHealthy, "ok"),
			from: messages.StateUnknown,
			want: "18:40:02.123  ? (id 9)   " +
				strings.Repeat(" ", 33) + "  " +
				"unknown -> healthy      ok",
		},
		{
			name: "no probe time uses the clock",
			cs:   noTime,
			from: messages.StateUnhealthy,
			want: "18:40:02.123  http-flap  " +
				"http GET /healthz 127.0.0.1:41234  " +
				"unhealthy -> healthy    ok",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newTestPrinter(false)
			if got := p.changeLine(tt.cs, tt.from); got != tt.want {
				t.Errorf("changeLine:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestNotifyPrintsChangesOnly(t *testing.T) {
	healthy, unhealthy := messages.StateHealthy, messages.StateUnhealthy
	tests := []struct {
		name  string
		batch []messages.CheckStatus
		want  []string // substrings of the lines printed, in order
	}{
		{
			name:  "first result",
			batch: []messages.CheckStatus{status(flapID, healthy, "ok")},
			want: []string{"http-flap  http GET /healthz " +
				"127.0.0.1:41234  unknown -> healthy"},
		},
		{
			name: "repeat of one check of two with a state",
			batch: []messages.CheckStatus{
				status(echoID, unhealthy, "refused"),
				status(flapID, healthy, "ok"),
			},
			want: []string{"tcp-echo   tcp 127.0.0.1:7"},
		},
		{
			name: "periodic without a change",
			batch: []messages.CheckStatus{
				status(echoID, unhealthy, "refused"),
				status(flapID, healthy, "ok"),
			},
			want: []string{
				"18:40:02.123  periodic status: 1 healthy, 1 unhealthy",
			},
		},
		{
			name: "change, then the others repeat",
			batch: []messages.CheckStatus{
				status(echoID, healthy, "ok"),
				status(flapID, healthy, "ok"),
			},
			want: []string{"unhealthy -> healthy"},
		},
		{
			name:  "then the changed one repeats too",
			batch: []messages.CheckStatus{status(echoID, healthy, "ok")},
			want:  []string{"periodic status: 2 healthy, 0 unhealthy"},
		},
	}
	p, buf := newTestPrinter(false)
	for _, tt := range tests {
		for _, cs := range tt.batch {
			p.Notify(cs)
		}
		checkLines(t, tt.name, lines(buf), tt.want)
	}
}

func TestServeChangesChecks(t *testing.T) {
	p, buf := newTestPrinter(false)
	healthy := messages.StateHealthy
	p.Notify(status(echoID, healthy, "ok"))
	p.Notify(status(flapID, healthy, "ok"))
	lines(buf)

	// Drop http-flap, add tls-new.
	p.Serve([]uint64{echoID, newID}, []demoCheck{testChecks[0], testChecks[2]})
	p.Notify(status(flapID, healthy, "late"))
	p.Notify(status(newID, healthy, "handshake"))
	p.Notify(status(echoID, healthy, "ok"))
	p.Notify(status(newID, healthy, "handshake"))
	checkLines(t, "after the change", lines(buf), []string{
		"http-flap  http GET /healthz 127.0.0.1:41234  healthy" +
			strings.Repeat(" ", 17) + "ignored, not served: late",
		"tls-new    tls 127.0.0.1:443                  unknown -> healthy",
		"periodic status: 2 healthy, 0 unhealthy",
	})

	p.Header([]string{"intro"}, "title")
	checkLines(t, "header", lines(buf), []string{
		"intro",
		"  tcp-echo   tcp 127.0.0.1:7" + strings.Repeat(" ", 18) +
			"  every 1s   expect healthy  id 281474976710656",
		"  tls-new    tls 127.0.0.1:443" + strings.Repeat(" ", 16) +
			"  every 2s   expect healthy  id 281474976710658",
		"title",
	})
}

func TestStopSilencesNotifications(t *testing.T) {
	p, buf := newTestPrinter(false)
	p.Stop()
	p.Notify(status(echoID, messages.StateHealthy, "ok"))
	if got := buf.String(); got != "" {
		t.Errorf("after Stop: got %q, want nothing", got)
	}
}

func TestColor(t *testing.T) {
	batch := []messages.CheckStatus{
		status(flapID, messages.StateHealthy, "ok"),
		status(echoID, messages.StateUnhealthy, "refused"),
	}
	tests := []struct {
		color bool
		want  []string
	}{
		{true, []string{
			"unknown -> " + ansiGreen + "healthy" + ansiReset + "    ",
			"unknown -> " + ansiRed + "unhealthy" + ansiReset + "  ",
		}},
		{false, []string{"unknown -> healthy    ", "unknown -> unhealthy  "}},
	}
	for _, tt := range tests {
		p, buf := newTestPrinter(tt.color)
		p.Print(&messages.NotificationBatch{Notifications: batch})
		got := buf.String()
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("color %v: output lacks %q:\n%s", tt.color, w, got)
			}
		}
		if !tt.color && strings.Contains(got, "\x1b") {
			t.Errorf("color off: output has escapes: %q", got)
		}
	}
}

func TestErrorLine(t *testing.T) {
	id := uint64(flapID)
	tests := []struct {
		name string
		err  *messages.Error
		want string
	}{
		{
			name: "about a check",
			err:  &messages.Error{Message: "config 3: port: bad", ID: &id},
			want: "18:40:02.123  error  http-flap: config 3: port: bad",
		},
		{
			name: "about the line",
			err:  &messages.Error{Message: "malformed line"},
			want: "18:40:02.123  error  malformed line",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newTestPrinter(false)
			if got := p.errorLine(tt.err); got != tt.want {
				t.Errorf("errorLine:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestStatusLine(t *testing.T) {
	cs := status(echoID, messages.StateHealthy, "TCP connect to 127.0.0.1:7")
	cs.Status.Successes, cs.Status.Failures = 12, 3
	never := status(flapID, messages.StateUnknown, "no notification received")
	never.Status.LastCheck = time.Time{}
	tests := []struct {
		name string
		cs   messages.CheckStatus
		full bool
		want string
	}{
		{"full", cs, true, "  tcp-echo   healthy       12 ok      3 failed  " +
			"0 restarts  TCP connect to 127.0.0.1:7"},
		{"as of", cs, false, "  tcp-echo   healthy    as of 18:40:02.123  " +
			"TCP connect to 127.0.0.1:7"},
		{"never notified", never, false, "  http-flap  unknown    as of " +
			strings.Repeat(" ", 12) + "  no notification received"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newTestPrinter(false)
			if got := p.statusLine(tt.cs, tt.full); got != tt.want {
				t.Errorf("statusLine:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	long := strings.Repeat("é", maxMessage+10)
	tests := []struct {
		in, want string
	}{
		{"plain", "plain"},
		{"two\nlines\r\n", "two lines"},
		{"bell\a and \x1b[31mescape", "bell  and  [31mescape"},
		{long, strings.Repeat("é", maxMessage-1) + "…"},
	}
	for _, tt := range tests {
		if got := oneLine(tt.in); got != tt.want {
			t.Errorf("oneLine(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	addr := netip.MustParseAddrPort("127.0.0.1:443")
	http := messages.Config{Checker: messages.CheckerHTTP, IP: addr.Addr(),
		Port: 443, Path: "/healthz"}
	https := http
	https.Secure = true
	tls := messages.Config{Checker: messages.CheckerTCP, IP: addr.Addr(),
		Port: 443, Secure: true}
	tests := []struct {
		name string
		c    messages.Config
		want string
	}{
		{"https", https, "https GET /healthz 127.0.0.1:443"},
		{"tls", tls, "tls 127.0.0.1:443"},
		{"defaults", messages.Config{Checker: messages.CheckerHTTP,
			IP: addr.Addr(), Port: 80}, "http GET / 127.0.0.1:80"},
		{"icmp", messages.Config{Checker: messages.CheckerICMP,
			IP: addr.Addr()}, "icmp 127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe(tt.c); got != tt.want {
				t.Errorf("describe: got %q, want %q", got, tt.want)
			}
		})
	}
}
