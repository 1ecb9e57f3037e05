package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
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
	// maxLine is the longest protocol line hcdemo reads, in bytes.
	maxLine = 4 << 20
)

// errExited is returned by dialSocket when the process that should
// listen exits before its socket accepts a connection.
var errExited = errors.New("process exited")

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
			return nil, errExited
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
