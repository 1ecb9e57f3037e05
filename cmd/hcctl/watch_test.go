package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// status returns a status of the given state, whose probe started at
// the given second past 18:45 and took 2.35ms.
func status(id uint64, state messages.State, sec int,
	msg string) messages.CheckStatus {
	return messages.CheckStatus{ID: id, Status: messages.Status{
		State:     state,
		Message:   msg,
		LastCheck: time.Date(2026, 12, 3, 18, 45, sec, 940e6, time.UTC),
		Duration:  2350 * time.Microsecond,
		Successes: 1,
	}}
}

// serveChanges speaks the protocol as a server does: ready, the
// answer to request_status, then batches of changes, repeats and new
// checks, an error and a line it cannot decode.
func serveChanges(p *peer) {
	p.send(&messages.Ready{})
	if _, ok := p.receive().(*messages.RequestStatus); !ok {
		p.t.Error("the client's first line is not request_status")
	}
	const (
		healthy   = messages.StateHealthy
		unhealthy = messages.StateUnhealthy
		unknown   = messages.StateUnknown
	)
	p.send(&messages.StatusResponse{Statuses: []messages.CheckStatus{
		status(1, healthy, 1, "TCP connect to 10.0.0.1:80"),
		status(2, unhealthy, 1, "HTTP GET /: got status 503, want 200"),
		status(4809844402031689728, unknown, 1, ""),
	}})
	p.send(&messages.NotificationBatch{Notifications: []messages.CheckStatus{
		status(1, unhealthy, 5, "TCP connect to 10.0.0.1:80: refused"),
		status(3, healthy, 6, "DNS A www.example.com: 10.0.0.3"),
		status(2, unhealthy, 6, "HTTP GET /: got status 503, want 200"),
	}})
	p.send(&messages.Error{Message: "shutdown: not allowed"})
	p.sendRaw("{\"type\":\"gossip\"}\n")
	p.send(&messages.NotificationBatch{Notifications: []messages.CheckStatus{
		status(1, healthy, 10, "TCP connect to 10.0.0.1:80"),
		status(3, unhealthy, 11, "DNS A www.example.com:\ntimeout"),
		{ID: 6, Status: messages.Status{State: unknown}},
		status(4809844402031689728, healthy, 12, "RADIUS Access-Accept"),
	}})
}

// TestWatch checks hcctl watch's output against golden files, with a
// fake server that closes the connection after its lines.
func TestWatch(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
		color  bool
	}{
		{"watch", nil, false},
		{"watch_all", []string{"-all"}, false},
		{"watch_color", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			path := fakeSocket(t, serveChanges)
			args := append([]string{"watch", "-socket", path}, tt.args...)
			got := runTest(t, args, func(c *cli) { c.color = tt.color })
			checkGolden(t, tt.golden, got.String(), path, "SOCKET")
		})
	}
}

// TestWatchInterrupt checks that an interrupt ends watch with status 0.
func TestWatchInterrupt(t *testing.T) {
	path := fakeSocket(t, func(p *peer) {
		p.send(&messages.Ready{})
		p.receive()
		p.send(&messages.StatusResponse{})
		p.send(&messages.NotificationBatch{
			Notifications: []messages.CheckStatus{
				status(7, messages.StateHealthy, 0, "ok"),
			},
		})
		p.waitClose()
	})
	ctx, interrupt := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	c := testCLI(ctx, &stdout, &stderr)
	code := make(chan int)
	go func() { code <- c.run([]string{"watch", "-socket", path}) }()

	want := "18:45:00.940  7  -> healthy"
	waitFor(t, "the change", func() bool {
		return strings.Contains(stdout.String(), want)
	})
	interrupt()
	if got := <-code; got != 0 {
		t.Errorf("watch = %d after an interrupt, want 0; stderr:\n%s", got,
			stderr.String())
	}
	if got := stderr.String(); got != "" {
		t.Errorf("stderr = %q, want nothing", got)
	}
}

// TestWatchNoReady checks the error when the server never says ready.
func TestWatchNoReady(t *testing.T) {
	path := fakeSocket(t, (*peer).waitClose)
	got := runTest(t, []string{"watch", "-socket", path, "-timeout", "50ms"})
	checkGolden(t, "watch_no_ready", got.String(), path, "SOCKET")
}
