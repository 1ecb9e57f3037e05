package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// Timeouts of hcdemo's side of the proxy protocol.
const (
	// dialTimeout bounds how long hcdemo waits for the server's socket to
	// accept a connection.
	dialTimeout = 10 * time.Second
	// dialRetry is the pause between two attempts to connect.
	dialRetry = 50 * time.Millisecond
	// ioTimeout bounds reading the ready line and writing one request.
	ioTimeout = 5 * time.Second
	// serverStop is how long the server gets to exit after SIGTERM before
	// it is killed.
	serverStop = 5 * time.Second
	// maxLine is the longest protocol line hcdemo reads, in bytes.
	maxLine = 4 << 20
)

// errServerExited is returned by dialSocket when the server process exits
// before its socket accepts a connection.
var errServerExited = errors.New("server exited")

// session is hcdemo's link to a server: the connection, and the server
// process and its temp dir when hcdemo started them. It is not safe for
// concurrent use.
type session struct {
	*client
	// Socket is the path of the server's proxy socket.
	Socket string

	server *serverProcess // nil when connected with -socket
	dir    string         // temp dir to remove, or ""
}

// openSession connects to the server at o.Socket or, when that is empty,
// starts o.Server on a socket in a new temp dir and connects to it.
func openSession(ctx context.Context, o options) (_ *session, err error) {
	if o.Socket != "" {
		c, err := dial(ctx, o.Socket, nil)
		if err != nil {
			return nil, err
		}
		return &session{client: c, Socket: o.Socket}, nil
	}

	dir, err := os.MkdirTemp("", "hcdemo-")
	if err != nil {
		return nil, fmt.Errorf("making temp dir: %w", err)
	}
	s := &session{Socket: filepath.Join(dir, "hc.sock"), dir: dir}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.server, err = startServer(o.Server, s.Socket); err != nil {
		return nil, err
	}
	s.client, err = dial(ctx, s.Socket, s.server.exited)
	if errors.Is(err, errServerExited) {
		return nil, fmt.Errorf("%s exited before accepting connections "+
			"(%v); its log is above", o.Server, s.server.err)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// exited returns a channel that is closed when the server hcdemo started
// exits, or nil when hcdemo started none.
func (s *session) exited() <-chan struct{} {
	if s.server == nil {
		return nil
	}
	return s.server.exited
}

// Close closes the connection, stops the server if hcdemo started it and
// removes the temp dir.
func (s *session) Close() error {
	var errs []error
	if s.client != nil {
		errs = append(errs, s.client.Close())
	}
	if s.server != nil {
		errs = append(errs, s.server.Stop(serverStop))
	}
	if s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	return errors.Join(errs...)
}

// serverProcess is a healthcheck-server that hcdemo started.
type serverProcess struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited
	err    error         // how it exited; read only after exited is closed
}

// serverArgs returns the flags that make the server serve socket only,
// with neither the Engine bridge nor metrics, and log only trouble.
func serverArgs(socket string) []string {
	return []string{
		"-proxy_socket", socket,
		"-engine=",
		"-metrics_addr=",
		"-log_format", "console",
		"-log_level", "warn",
		"-notify_interval", "30s",
	}
}

// startServer starts the server binary bin on socket. Its stdout and
// stderr go to hcdemo's stderr, so that hcdemo's stdout holds only the
// demo's lines.
func startServer(bin, socket string) (*serverProcess, error) {
	path, err := exec.LookPath(bin)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("server binary %s not found: run `make demo`, "+
			"which builds it, or build it with `go build -o bin/ ./cmd/...` "+
			"and pass -server PATH", bin)
	}
	if err != nil {
		return nil, fmt.Errorf("finding server binary: %w", err)
	}

	cmd := exec.Command(path, serverArgs(socket)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// NOTE: the server gets its own process group so that Ctrl-C in the
	// terminal reaches only hcdemo, which then stops the server with
	// SIGTERM, as a load balancer's control plane would.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	s := &serverProcess{cmd: cmd, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

// Stop sends the server SIGTERM and waits for it to exit, killing it after
// timeout. It returns nil when the server exited with status 0.
func (s *serverProcess) Stop(timeout time.Duration) error {
	select {
	case <-s.exited:
		return s.exitError()
	default:
	}

	err := s.cmd.Process.Signal(syscall.SIGTERM)
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping server: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-s.exited:
		return s.exitError()
	case <-t.C:
	}

	s.cmd.Process.Kill()
	<-s.exited
	return fmt.Errorf("server still running %v after SIGTERM; killed it",
		timeout)
}

// exitError describes an exit other than with status 0. The server must
// have exited.
func (s *serverProcess) exitError() error {
	if s.err != nil {
		return fmt.Errorf("server exited: %w", s.err)
	}
	return nil
}

// client speaks the proxy protocol on one connection. A reader goroutine
// decodes the server's lines onto Msgs until the connection ends; Done is
// closed when it stops, and Err then says why. Send and Close must be
// called from one goroutine.
type client struct {
	// Msgs carries the server's messages: the types DecodeLine returns,
	// and badLine for a line it could not decode.
	Msgs <-chan any
	// Done is closed when the reader stops.
	Done <-chan struct{}
	// Err is why the reader stopped: io.EOF when the server hung up. Read
	// it only after Done is closed.
	Err error

	conn      net.Conn
	sc        *bufio.Scanner
	msgs      chan any
	done      chan struct{}
	quit      chan struct{}
	closeOnce sync.Once
}

// badLine stands for a line from the server that DecodeLine rejected.
type badLine struct {
	err error
}

// dial connects to the socket at path, reads the server's ready line and
// starts the reader. It retries until the socket accepts, exited is
// closed, ctx ends or dialTimeout passes; exited may be nil.
func dial(
	ctx context.Context, path string, exited <-chan struct{},
) (*client, error) {
	conn, err := dialSocket(ctx, path, exited)
	if err != nil {
		return nil, err
	}
	c := &client{
		conn: conn,
		sc:   bufio.NewScanner(conn),
		msgs: make(chan any),
		done: make(chan struct{}),
		quit: make(chan struct{}),
	}
	c.Msgs, c.Done = c.msgs, c.done
	c.sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	if err := c.awaitReady(); err != nil {
		conn.Close()
		return nil, err
	}
	go c.read()
	return c, nil
}

// dialSocket connects to the unix socket at path, retrying every
// dialRetry; see dial.
func dialSocket(
	ctx context.Context, path string, exited <-chan struct{},
) (net.Conn, error) {
	deadline := time.NewTimer(dialTimeout)
	defer deadline.Stop()
	retry := time.NewTicker(dialRetry)
	defer retry.Stop()
	d := net.Dialer{Timeout: dialTimeout}
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			return conn, nil
		}
		select {
		case <-exited:
			return nil, errServerExited
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("connecting to %s: not accepting after "+
				"%v: %w", path, dialTimeout, err)
		case <-retry.C:
		}
	}
}

// awaitReady reads the first line, which must be ready.
func (c *client) awaitReady() error {
	if err := c.conn.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		return err
	}
	if !c.sc.Scan() {
		err := c.sc.Err()
		if err == nil {
			err = io.EOF
		}
		return fmt.Errorf("waiting for ready: %w", err)
	}
	msg, err := messages.DecodeLine(c.sc.Bytes())
	if err != nil {
		return fmt.Errorf("waiting for ready: %w", err)
	}
	if _, ok := msg.(*messages.Ready); !ok {
		return fmt.Errorf("waiting for ready: got %T first", msg)
	}
	return c.conn.SetReadDeadline(time.Time{})
}

// read decodes lines onto msgs until the connection ends or Close is
// called.
//
// NOTE: reads have no deadline: a server may rightly stay quiet for as
// long as no state changes. Close unblocks a read by closing the
// connection.
func (c *client) read() {
	defer close(c.done)
	for c.sc.Scan() {
		msg, err := messages.DecodeLine(c.sc.Bytes())
		if err != nil {
			msg = badLine{err: err}
		}
		select {
		case c.msgs <- msg:
		case <-c.quit:
			c.Err = net.ErrClosed
			return
		}
	}
	c.Err = c.sc.Err()
	if c.Err == nil {
		c.Err = io.EOF
	}
}

// Send writes msg, one of the types EncodeLine accepts, as one line.
func (c *client) Send(msg any) error {
	line, err := messages.EncodeLine(msg)
	if err != nil {
		return err
	}
	if err := c.conn.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
		return err
	}
	_, err = c.conn.Write(line)
	return err
}

// Close closes the connection and waits for the reader to stop.
func (c *client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.quit)
		err = c.conn.Close()
		<-c.done
	})
	return err
}
