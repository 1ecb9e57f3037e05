package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/messages"
)

// timeFormat is the time of a printed notification: when it arrived.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// printer prints notifications, one line each. It is safe for concurrent
// use: the Server notifies from one goroutine per connection.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	quiet bool
	now   func() time.Time
}

// newPrinter returns a printer to w that prints nothing when quiet.
func newPrinter(w io.Writer, quiet bool) *printer {
	return &printer{w: w, quiet: quiet, now: time.Now}
}

// print prints n; known tells whether a served check has its ID.
func (p *printer) print(n bridge.Notification, known bool) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, formatNotification(p.now(), n, known))
}

// formatNotification returns the line of n, received at t, e.g.
// `2025-01-02T03:04:05.000Z id=7 state=healthy message="ok"`.
func formatNotification(t time.Time, n bridge.Notification, known bool) string {
	line := fmt.Sprintf("%s id=%d state=%s message=%q", t.Format(timeFormat),
		n.Id, messages.State(n.Status.State), n.Status.Message)
	if !known {
		line += " unknown_id=true"
	}
	return line
}
