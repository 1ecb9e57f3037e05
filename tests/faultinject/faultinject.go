// Package faultinject injects faults into a running healthcheck-server
// through its JSON-lines socket, for fault-injection tests and the
// server's inject and clear subcommands. The server must run with
// -enable_fault_injection.
package faultinject

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// DefaultTimeout bounds each call, connection included.
const DefaultTimeout = 10 * time.Second

// ErrRefused wraps the server's error reply to a request.
var ErrRefused = errors.New("server refused")

// Client is a connection to a server's socket. It is not safe for
// concurrent use.
type Client struct {
	socket  string
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

// Dial connects to the server's socket and waits for its ready line.
func Dial(socket string) (*Client, error) {
	conn, err := net.DialTimeout("unix", socket, DefaultTimeout)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", socket, err)
	}
	c := &Client{socket: socket, conn: conn, r: bufio.NewReader(conn),
		timeout: DefaultTimeout}
	if _, err := c.next(func(msg any) bool {
		_, ok := msg.(*messages.Ready)
		return ok
	}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect to %s: %w", socket, err)
	}
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Inject gives check id count faults of kind f and returns the server's
// acknowledgement.
func (c *Client) Inject(id uint64, f messages.Fault, count int) (string, error) {
	return c.call(&messages.InjectFault{ID: id, Fault: f, Count: count})
}

// Crash makes one of the tree's singletons (messages.FaultActors) panic
// count times.
func (c *Client) Crash(actor string, count int) (string, error) {
	return c.call(&messages.InjectFault{
		Actor: actor, Fault: messages.FaultPanic, Count: count,
	})
}

// Clear drops the faults check id has not suffered yet.
func (c *Client) Clear(id uint64) (string, error) {
	return c.call(&messages.ClearFaults{ID: id})
}

// ClearAll drops the faults every check has not suffered yet.
func (c *Client) ClearAll() (string, error) {
	return c.call(&messages.ClearFaults{All: true})
}

// call sends req and waits for its ack or error. A client that does not
// read between calls may be disconnected by the server, whose writes to
// it time out; when not a byte of req could be written, call connects
// again, once, and sends it there. Once any of req is written, call never
// sends it again: the server may have acted on it, and a fault sent twice
// would be injected twice.
func (c *Client) call(req any) (string, error) {
	line, err := messages.EncodeLine(req)
	if err != nil {
		return "", err
	}
	n, err := c.write(line)
	if err != nil && n == 0 {
		fresh, derr := Dial(c.socket)
		if derr != nil {
			return "", fmt.Errorf("%w; reconnecting: %w", err, derr)
		}
		c.conn.Close()
		*c = *fresh
		_, err = c.write(line)
	}
	if err != nil {
		return "", err
	}
	return c.await()
}

// write sends one line and returns how many of its bytes were written.
func (c *Client) write(line []byte) (int, error) {
	c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	n, err := c.conn.Write(line)
	if err != nil {
		return n, fmt.Errorf("send: %w", err)
	}
	return n, nil
}

// await waits for the answer to a request, an ack or an error, skipping
// notification batches and other lines meanwhile.
func (c *Client) await() (string, error) {
	msg, err := c.next(func(msg any) bool {
		switch msg.(type) {
		case *messages.Ack, *messages.Error:
			return true
		}
		return false
	})
	if err != nil {
		return "", err
	}
	if e, ok := msg.(*messages.Error); ok {
		return "", fmt.Errorf("%w: %s", ErrRefused, e.Message)
	}
	return msg.(*messages.Ack).Message, nil
}

// next reads lines until one satisfies want, within the timeout.
func (c *Client) next(want func(any) bool) (any, error) {
	c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	for {
		line, err := c.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		msg, err := messages.DecodeLine(line)
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		if want(msg) {
			return msg, nil
		}
	}
}
