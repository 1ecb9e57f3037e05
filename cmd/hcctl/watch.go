package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// watch runs "hcctl watch": one line per state change read from the
// server's JSON-lines socket, until SIGINT or SIGTERM (status 0) or the
// server closes the connection (an error).
func (c *cli) watch(args []string) error {
	fs := c.flagSet("watch", "[-all] [-socket PATH]")
	socket := fs.String("socket", defaultSocket,
		"the server's JSON-lines socket (its -proxy_socket)")
	all := fs.Bool("all", false, "also print the statuses that repeat "+
		"a check's state: the first status and the periodic ones")
	timeout := fs.Duration("timeout", defaultTimeout,
		"how long to wait for the connection and the server's ready line")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *timeout <= 0 {
		return usagef("-timeout: must be positive, got %v", *timeout)
	}

	ctx, stop := c.interrupt()
	defer stop()
	conn, err := dialSocket(*socket, *timeout, false)
	if err != nil {
		return err
	}
	defer conn.Close()
	unblock := context.AfterFunc(ctx, func() { conn.Close() })
	defer unblock()

	w := &watcher{
		out: c.stdout, errs: c.stderr, now: c.now, loc: c.loc,
		color: c.color, all: *all,
		states: make(map[uint64]messages.State),
	}
	err = w.run(conn, *timeout)
	if ctx.Err() != nil {
		return nil // Interrupted: the way watch is meant to end.
	}
	if err != nil {
		return fmt.Errorf("%s: %w", *socket, err)
	}
	return nil
}

// watcher prints the state changes of the checks from a socket's lines.
// It is not safe for concurrent use.
type watcher struct {
	out, errs io.Writer
	now       func() time.Time
	loc       *time.Location
	color     bool
	// all prints the statuses that repeat a state, too.
	all bool

	// states is every check's last state seen.
	states map[uint64]messages.State
	// idWidth is the widest ID printed so far, to align the lines.
	idWidth int
}

// run waits for the server's ready line, asks for every check's status,
// then prints changes until the connection ends.
func (w *watcher) run(conn net.Conn, timeout time.Duration) error {
	r := bufio.NewReader(conn)
	conn.SetDeadline(time.Now().Add(timeout))
	if err := waitReady(r); err != nil {
		if isTimeout(err) {
			return fmt.Errorf("no ready line within %v (-timeout)", timeout)
		}
		return fmt.Errorf("waiting for ready: %w", err)
	}
	// The current states, so that the stream shows only changes.
	line, err := messages.EncodeLine(&messages.RequestStatus{})
	if err != nil {
		return err
	}
	if _, err := conn.Write(line); err != nil {
		return fmt.Errorf("send request_status: %w", err)
	}
	conn.SetDeadline(time.Time{})

	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return readError(err)
		}
		w.line(line)
	}
}

// waitReady reads lines until the server's ready line.
func waitReady(r *bufio.Reader) error {
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return readError(err)
		}
		if msg, err := messages.DecodeLine(line); err == nil {
			if _, ok := msg.(*messages.Ready); ok {
				return nil
			}
		}
	}
}

// readError names the end of the connection.
func readError(err error) error {
	if errors.Is(err, io.EOF) {
		return errServerClosed
	}
	return fmt.Errorf("read: %w", err)
}

// line handles one line from the server.
func (w *watcher) line(line []byte) {
	msg, err := messages.DecodeLine(line)
	if err != nil {
		fmt.Fprintf(w.errs, "hcctl: skipping a line: %v\n", err)
		return
	}
	switch m := msg.(type) {
	case *messages.NotificationBatch:
		for _, cs := range m.Notifications {
			w.observe(cs, false)
		}
	case *messages.StatusResponse:
		for _, cs := range m.Statuses {
			w.observe(cs, true)
		}
		fmt.Fprintf(w.out, "%s  watching %s\n",
			w.now().In(w.loc).Format(clockLayout),
			w.summary())
	case *messages.Error:
		fmt.Fprintf(w.errs, "hcctl: the server says: %s\n",
			sanitize(m.Message))
	}
}

// observe prints cs if it changes its check's state, or, with all,
// whatever it says. A snapshot's statuses are the starting point: the
// first sight of a check in one prints only with all.
func (w *watcher) observe(cs messages.CheckStatus, snapshot bool) {
	prev, seen := w.states[cs.ID]
	w.states[cs.ID] = cs.Status.State
	// Every ID widens the column, so that the snapshot's set it at once.
	w.idWidth = max(w.idWidth, len(strconv.FormatUint(cs.ID, 10)))
	switch {
	case w.all:
	case !seen && snapshot, seen && prev == cs.Status.State:
		return
	}
	var from *messages.State
	if seen {
		from = &prev
	}
	at := cs.Status.LastCheck
	if at.IsZero() {
		at = w.now()
	}
	fmt.Fprintln(w.out, watchLine(at.In(w.loc), cs, w.idWidth, from,
		w.color))
}

// summary counts the checks seen by state.
func (w *watcher) summary() string {
	var n stateCounts
	for _, st := range w.states {
		n.add(st)
	}
	return n.String()
}
