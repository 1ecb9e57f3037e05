package tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/messages"
)

// Timeouts of the helpers. They bound waits for things that normally take
// a few hundred milliseconds, with room for -race on two slow cores.
const (
	// waitTimeout bounds a wait for something the server should do soon;
	// it is only reached when a test fails.
	waitTimeout = 10 * time.Second
	// stopTimeout bounds a graceful stop of a server.
	stopTimeout = 10 * time.Second
	// pollEvery is the pause between two polls of a condition.
	pollEvery = 20 * time.Millisecond
)

// testLogWriter sends log lines to the test's log until the test is over;
// lines from goroutines that outlive the test are dropped, because t.Log
// panics after the test has completed.
type testLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// newLogger returns a logger writing into t's log at info level, or at
// the level named by $HC_TEST_LOG (e.g. "debug").
func newLogger(t testing.TB) zerolog.Logger {
	t.Helper()
	w := &testLogWriter{t: t}
	// Registered first, so it runs after every other cleanup of t.
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	level := zerolog.InfoLevel
	if s := os.Getenv("HC_TEST_LOG"); s != "" {
		if l, err := zerolog.ParseLevel(s); err == nil {
			level = l
		}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// serverOptions configures a test server; zero fields take the defaults
// that startServer documents.
type serverOptions struct {
	// NotifyInterval defaults to a minute, so that periodic full statuses
	// stay out of tests that do not ask for them.
	NotifyInterval time.Duration
	// BatchSize defaults to the server's default; BatchDelay to 20ms.
	BatchSize  int
	BatchDelay time.Duration
	// MaxLineBytes defaults to the server's default.
	MaxLineBytes  int
	AllowShutdown bool
	OnShutdown    func()
	// EnableFaultInjection lets clients inject faults.
	EnableFaultInjection bool
	// Tune, if set, adjusts the manager's config last; TuneProxy the
	// proxy's.
	Tune      func(*actors.ManagerConfig)
	TuneProxy func(*actors.ProxyConfig)
	// Edges are started beside the proxy.
	Edges []actors.Edge
}

// server is a whole healthcheck server running in the test's process.
type server struct {
	path    string
	svc     *actors.Service
	stats   *actors.ProxyStats
	stopped bool
}

// startServer starts a server on a fresh unix socket and stops it when
// the test ends.
func startServer(t testing.TB, opts serverOptions) *server {
	t.Helper()
	logger := newLogger(t)

	// t.TempDir() can exceed the 108-byte limit of a socket path.
	dir, err := os.MkdirTemp("", "hc")
	if err != nil {
		t.Fatalf("making socket dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	if opts.NotifyInterval == 0 {
		opts.NotifyInterval = time.Minute
	}
	if opts.BatchDelay == 0 {
		opts.BatchDelay = 20 * time.Millisecond
	}
	s := &server{
		path:  filepath.Join(dir, "hc.sock"),
		stats: &actors.ProxyStats{},
	}
	pcfg := actors.ProxyConfig{
		Path:                 s.path,
		MaxLineBytes:         opts.MaxLineBytes,
		AllowShutdown:        opts.AllowShutdown,
		OnShutdown:           opts.OnShutdown,
		EnableFaultInjection: opts.EnableFaultInjection,
		Stats:                s.stats,
		Logger:               logger,
	}
	if opts.TuneProxy != nil {
		opts.TuneProxy(&pcfg)
	}
	edge, err := actors.ListenProxy(pcfg)
	if err != nil {
		t.Fatalf("ListenProxy: %v", err)
	}

	mcfg := actors.DefaultManagerConfig()
	mcfg.NotifyInterval = opts.NotifyInterval
	mcfg.BatchDelay = opts.BatchDelay
	if opts.BatchSize != 0 {
		mcfg.BatchSize = opts.BatchSize
	}
	mcfg.Logger = logger
	if opts.Tune != nil {
		opts.Tune(&mcfg)
	}
	s.svc, err = actors.Start(actors.ServiceConfig{
		Manager: mcfg,
		Edges:   append([]actors.Edge{edge}, opts.Edges...),
		Logger:  logger,
	})
	if err != nil {
		t.Fatalf("actors.Start: %v", err)
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop stops the server gracefully, once.
func (s *server) stop(t testing.TB) {
	t.Helper()
	if s.stopped {
		return
	}
	s.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := s.svc.Stop(ctx); err != nil {
		t.Errorf("stopping server: %v", err)
	}
}

// received is one line the server sent, decoded.
type received struct {
	at time.Time
	// msg is a *messages.Ready, *messages.NotificationBatch,
	// *messages.StatusResponse or *messages.Error.
	msg any
	raw string
}

// client is one connection to a server's socket. It reads synchronously,
// with a deadline on every read, and keeps every line it received so that
// tests can wait for conditions over the whole history. A client is not
// safe for concurrent use.
type client struct {
	t       testing.TB
	conn    net.Conn
	r       *bufio.Reader
	partial []byte
	got     []received
	eof     bool
}

// dial connects to the server at path and waits for its ready line. The
// connection is closed when the test ends.
func dial(t testing.TB, path string) *client {
	t.Helper()
	conn, err := net.DialTimeout("unix", path, waitTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(func() { c.conn.Close() })

	c.waitFor(waitTimeout, "ready line", func() bool { return len(c.got) > 0 })
	if _, ok := c.got[0].msg.(*messages.Ready); !ok {
		t.Fatalf("first line = %s, want ready", c.got[0].raw)
	}
	return c
}

// close closes the connection.
func (c *client) close() { c.conn.Close() }

// bind makes the client report failures to t, a subtest, until the
// returned func restores the previous test: FailNow must be called from
// the goroutine of the test it fails.
func (c *client) bind(t testing.TB) (restore func()) {
	prev := c.t
	c.t = t
	return func() { c.t = prev }
}

// sendRaw writes s as it is.
func (c *client) sendRaw(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("writing %q: %v", s, err)
	}
}

// send encodes msg as a protocol line and writes it.
func (c *client) send(msg any) {
	c.t.Helper()
	line, err := messages.EncodeLine(msg)
	if err != nil {
		c.t.Fatalf("encoding %T: %v", msg, err)
	}
	c.sendRaw(string(line))
}

// update sends the complete desired set of configs.
func (c *client) update(configs ...messages.Config) {
	c.t.Helper()
	c.send(&messages.UpdateConfigs{Configs: configs})
}

// readOne reads at most one line, waiting until deadline. It reports
// whether it received one; it records EOF in c.eof.
func (c *client) readOne(deadline time.Time) bool {
	c.t.Helper()
	c.conn.SetReadDeadline(deadline)
	chunk, err := c.r.ReadBytes('\n')
	c.partial = append(c.partial, chunk...)
	var ne net.Error
	switch {
	case err == nil:
	case errors.As(err, &ne) && ne.Timeout():
		return false
	case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, os.ErrClosed):
		if len(c.partial) > 0 {
			c.t.Fatalf("connection ended inside a line: %q", c.partial)
		}
		c.eof = true
		return false
	default:
		// A reset counts as the end of the connection too.
		c.eof = true
		return false
	}

	line := c.partial
	c.partial = nil
	msg, err := messages.DecodeLine(line)
	if err != nil {
		c.t.Fatalf("server sent an undecodable line %q: %v", line, err)
	}
	c.got = append(c.got, received{
		at:  time.Now(),
		msg: msg,
		raw: strings.TrimSuffix(string(line), "\n"),
	})
	return true
}

// tryWaitFor reads lines until cond holds, the connection ends or timeout
// passes; it reports whether cond held.
func (c *client) tryWaitFor(timeout time.Duration, cond func() bool) bool {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if c.eof || !time.Now().Before(deadline) {
			return false
		}
		c.readOne(deadline)
	}
	return true
}

// waitFor reads lines until cond holds, and fails the test if it does not
// within timeout.
func (c *client) waitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	if c.tryWaitFor(timeout, cond) {
		return
	}
	end := "timed out after " + timeout.String()
	if c.eof {
		end = "connection closed"
	}
	c.t.Fatalf("waiting for %s: %s; received:\n%s", what, end, c.dump(0))
}

// waitEOF reads lines until the server closes the connection.
func (c *client) waitEOF(timeout time.Duration) {
	c.t.Helper()
	c.waitFor(timeout, "end of connection", func() bool { return c.eof })
}

// dump lists the lines received from index from on, for failure messages.
func (c *client) dump(from int) string {
	var b strings.Builder
	for i, r := range c.got[from:] {
		fmt.Fprintf(&b, "  [%d] %s %s\n", from+i, r.at.Format("15:04:05.000"), r.raw)
	}
	return b.String()
}

// reply waits for the first line after index from that is of type T.
func reply[T any](c *client, from int, what string) T {
	c.t.Helper()
	var found T
	c.waitFor(waitTimeout, what, func() bool {
		for _, r := range c.got[from:] {
			if m, ok := r.msg.(T); ok {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// status requests and returns every check's status.
func (c *client) status() *messages.StatusResponse {
	c.t.Helper()
	from := len(c.got)
	c.send(&messages.RequestStatus{})
	return reply[*messages.StatusResponse](c, from, "status_response")
}

// waitStatus polls request_status until cond holds for the response, and
// fails the test if it does not within timeout.
func (c *client) waitStatus(
	timeout time.Duration, what string, cond func(*messages.StatusResponse) bool,
) *messages.StatusResponse {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := c.status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			line, _ := messages.EncodeLine(st)
			c.t.Fatalf("waiting for %s: timed out after %v; last status: %s",
				what, timeout, line)
		}
		time.Sleep(pollEvery)
	}
}

// note is one notification, with where and when it arrived.
type note struct {
	messages.CheckStatus
	// index is the position of its batch in client.got.
	index int
	at    time.Time
}

// notes returns the notifications received from index from on, in order.
func (c *client) notes(from int) []note {
	var out []note
	for i := from; i < len(c.got); i++ {
		b, ok := c.got[i].msg.(*messages.NotificationBatch)
		if !ok {
			continue
		}
		for _, cs := range b.Notifications {
			out = append(out, note{CheckStatus: cs, index: i, at: c.got[i].at})
		}
	}
	return out
}

// batches returns the notification batches received from index from on.
func (c *client) batches(from int) []*messages.NotificationBatch {
	var out []*messages.NotificationBatch
	for _, r := range c.got[from:] {
		if b, ok := r.msg.(*messages.NotificationBatch); ok {
			out = append(out, b)
		}
	}
	return out
}

// findNote returns the first notification for id from index from on.
func (c *client) findNote(from int, id uint64) (note, bool) {
	for _, n := range c.notes(from) {
		if n.ID == id {
			return n, true
		}
	}
	return note{}, false
}

// waitNote waits for a notification for id in state want, from index from
// on, and returns it.
func (c *client) waitNote(from int, id uint64, want messages.State) note {
	c.t.Helper()
	var found note
	what := fmt.Sprintf("notification of %d %s", id, want)
	c.waitFor(waitTimeout, what, func() bool {
		for _, n := range c.notes(from) {
			if n.ID == id && n.Status.State == want {
				found = n
				return true
			}
		}
		return false
	})
	return found
}

// waitFirstNotes waits until every id has had a notification from index
// from on, and returns the first of each.
func (c *client) waitFirstNotes(from int, ids ...uint64) map[uint64]note {
	c.t.Helper()
	first := make(map[uint64]note)
	c.waitFor(waitTimeout, fmt.Sprintf("notifications of %v", ids), func() bool {
		for _, n := range c.notes(from) {
			if _, ok := first[n.ID]; !ok {
				first[n.ID] = n
			}
		}
		for _, id := range ids {
			if _, ok := first[id]; !ok {
				return false
			}
		}
		return true
	})
	return first
}

// statusOf returns the status of id in st.
func statusOf(st *messages.StatusResponse, id uint64) (messages.Status, bool) {
	for _, cs := range st.Statuses {
		if cs.ID == id {
			return cs.Status, true
		}
	}
	return messages.Status{}, false
}

// ids returns the IDs listed in st, in its order.
func ids(st *messages.StatusResponse) []uint64 {
	out := make([]uint64, len(st.Statuses))
	for i, cs := range st.Statuses {
		out[i] = cs.ID
	}
	return out
}

// eventually polls cond until it holds, and fails the test if it does not
// within timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out after %v", what, timeout)
		}
		time.Sleep(pollEvery)
	}
}
