package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// testNow is the printer's clock in these tests: 18:40:02.123 local time.
var testNow = time.Date(2025, 1, 2, 18, 40, 2, 123e6, time.Local)

// newTestPrinter returns a printer to a buffer for two checks, #1
// tcp-echo and #3 http-flap, with its clock stopped at testNow.
func newTestPrinter(color bool) (*printer, *bytes.Buffer) {
	echo := baseConfig(messages.CheckerTCP,
		netip.MustParseAddrPort("127.0.0.1:7"), time.Second)
	echo.ID = 1
	flap := httpConfig(netip.MustParseAddrPort("127.0.0.1:41234"))
	flap.ID = 3
	var buf bytes.Buffer
	p := newPrinter(&buf, color, []demoCheck{
		{"tcp-echo", "healthy", echo},
		{"http-flap", "flaps", flap},
	})
	p.now = func() time.Time { return testNow }
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

func TestChangeLine(t *testing.T) {
	noTime := status(3, messages.StateHealthy, "ok")
	noTime.Status.LastCheck = time.Time{}
	tests := []struct {
		name string
		cs   messages.CheckStatus
		from messages.State
		want string
	}{
		{
			name: "first result",
			cs: status(3, messages.StateHealthy,
				"HTTP GET to 127.0.0.1:41234; got 200 OK"),
			from: messages.StateUnknown,
			want: "18:40:02.123  #3 http-flap  " +
				"http GET /healthz 127.0.0.1:41234  " +
				"unknown -> healthy      " +
				"HTTP GET to 127.0.0.1:41234; got 200 OK",
		},
		{
			name: "shorter description and line breaks in message",
			cs: status(1, messages.StateUnhealthy,
				"read failed:\r\nEOF"),
			from: messages.StateHealthy,
			want: "18:40:02.123  #1 tcp-echo   " +
				"tcp 127.0.0.1:7                    " +
				"healthy -> unhealthy    " +
				"read failed:  EOF",
		},
		{
			name: "unknown check",
			cs:   status(9, messages.StateHealthy, "ok"),
			from: messages.StateUnknown,
			want: "18:40:02.123  #9 ?          " +
				strings.Repeat(" ", 33) + "  " +
				"unknown -> healthy      ok",
		},
		{
			name: "no probe time uses the clock",
			cs:   noTime,
			from: messages.StateUnhealthy,
			want: "18:40:02.123  #3 http-flap  " +
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

func TestNotificationsPrintChangesOnly(t *testing.T) {
	healthy, unhealthy := messages.StateHealthy, messages.StateUnhealthy
	tests := []struct {
		name  string
		batch []messages.CheckStatus
		want  []string // substrings of the lines printed, in order
	}{
		{
			name:  "first result",
			batch: []messages.CheckStatus{status(3, healthy, "ok")},
			want: []string{"#3 http-flap  http GET /healthz " +
				"127.0.0.1:41234  unknown -> healthy"},
		},
		{
			name:  "repeat of one check",
			batch: []messages.CheckStatus{status(3, healthy, "ok")},
		},
		{
			name: "periodic with a change",
			batch: []messages.CheckStatus{
				status(1, unhealthy, "refused"),
				status(3, healthy, "ok"),
			},
			want: []string{
				"unknown -> unhealthy",
				"periodic status: 1 healthy, 1 unhealthy",
			},
		},
		{
			name: "periodic without a change",
			batch: []messages.CheckStatus{
				status(1, unhealthy, "refused"),
				status(3, healthy, "ok"),
			},
			want: []string{"18:40:02.123  periodic status: 1 healthy, 1 unhealthy"},
		},
	}
	p, buf := newTestPrinter(false)
	for _, tt := range tests {
		buf.Reset()
		p.Print(&messages.NotificationBatch{Notifications: tt.batch})
		got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if buf.Len() == 0 {
			got = nil
		}
		if len(got) != len(tt.want) {
			t.Fatalf("%s: got %d lines %q, want %d", tt.name, len(got),
				got, len(tt.want))
		}
		for i := range got {
			if !strings.Contains(got[i], tt.want[i]) {
				t.Errorf("%s: line %d: got %q, want it to contain %q",
					tt.name, i, got[i], tt.want[i])
			}
		}
	}
}

func TestColor(t *testing.T) {
	batch := &messages.NotificationBatch{Notifications: []messages.CheckStatus{
		status(3, messages.StateHealthy, "ok"),
		status(1, messages.StateUnhealthy, "refused"),
	}}
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
		p.Print(batch)
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
	id := uint64(3)
	tests := []struct {
		name string
		err  *messages.Error
		want string
	}{
		{
			name: "about a check",
			err:  &messages.Error{Message: "config 3: port: bad", ID: &id},
			want: "18:40:02.123  error  #3 http-flap: config 3: port: bad",
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
	p, _ := newTestPrinter(false)
	cs := status(1, messages.StateHealthy, "TCP connect to 127.0.0.1:7")
	cs.Status.Successes, cs.Status.Failures = 12, 3
	want := "  #1 tcp-echo   healthy       12 ok      3 failed  0 restarts  " +
		"TCP connect to 127.0.0.1:7"
	if got := p.statusLine(cs); got != want {
		t.Errorf("statusLine:\n got %q\nwant %q", got, want)
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
	https := httpConfig(addr)
	https.Secure = true
	tls := baseConfig(messages.CheckerTCP, addr, time.Second)
	tls.Secure = true
	bare := messages.Config{
		Checker: messages.CheckerHTTP, IP: addr.Addr(), Port: 80,
	}
	tests := []struct {
		name string
		c    messages.Config
		want string
	}{
		{"https", https, "https GET /healthz 127.0.0.1:443"},
		{"tls", tls, "tls 127.0.0.1:443"},
		{"defaults", bare, "http GET / 127.0.0.1:80"},
		{"dns", dnsConfig(addr, demoAddr), "dns demo.test. A 127.0.0.1:443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe(tt.c); got != tt.want {
				t.Errorf("describe: got %q, want %q", got, tt.want)
			}
		})
	}
}
