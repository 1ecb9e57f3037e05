package actors

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/lbhealth/hcsupervisor/messages"
)

// client is one connection to the proxy. The proxy actor owns it; its
// reader and writer goroutines end when the connection closes.
type client struct {
	id   uint64
	conn net.Conn
	cfg  ProxyConfig
	log  zerolog.Logger

	// out is the writer's queue; the proxy closes it to end the writer.
	out    chan []byte
	closed bool
	// backlog holds what did not fit in out; wantDrain asks the writer to
	// tell the proxy when out is empty.
	backlog   backlog
	wantDrain atomic.Bool

	readerDone chan struct{}
	writerDone chan struct{}
}

func newClient(id uint64, conn net.Conn, cfg ProxyConfig, log zerolog.Logger) *client {
	return &client{
		id:         id,
		conn:       conn,
		cfg:        cfg,
		log:        log.With().Uint64("client", id).Logger(),
		out:        make(chan []byte, cfg.ClientQueue),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// start runs the client's reader and writer.
func (cl *client) start(proxy *actor.PID, root *actor.RootContext) {
	go cl.read(proxy, root)
	go cl.write(proxy, root)
}

// offer queues a line for the writer if there is room.
func (cl *client) offer(line []byte) bool {
	select {
	case cl.out <- line:
		return true
	default:
		return false
	}
}

// read decodes lines until the connection ends, sending each to the proxy.
func (cl *client) read(proxy *actor.PID, root *actor.RootContext) {
	defer close(cl.readerDone)
	r := bufio.NewReaderSize(cl.conn, 64<<10)
	for {
		line, err := readLine(r, cl.cfg.MaxLineBytes)
		switch {
		case errors.Is(err, errLineTooLong):
			root.Send(proxy, &clientRequest{client: cl, err: fmt.Errorf(
				"%w: over %d bytes (-max_line_bytes)", errLineTooLong,
				cl.cfg.MaxLineBytes)})
			continue
		case err != nil:
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				cl.log.Debug().Err(err).Msg("client_read_failed")
			}
			root.Send(proxy, &clientGone{client: cl})
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		msg, err := messages.DecodeLine(line)
		root.Send(proxy, &clientRequest{client: cl, msg: msg, err: err})
	}
}

// readLine returns the next line without its "\n". A line longer than max
// is consumed up to its end and reported as errLineTooLong. A last line
// without "\n" counts as a line.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > max+1 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil && (tooLong || len(line) == 0):
			return nil, err
		case tooLong:
			return nil, errLineTooLong
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		return bytes.TrimSuffix(line, []byte("\r")), nil
	}
}

// write sends queued lines until the queue is closed, then closes the
// connection. After a failed write it discards lines until then. When
// the proxy holds a backlog, it says so each time the queue empties.
func (cl *client) write(proxy *actor.PID, root *actor.RootContext) {
	defer close(cl.writerDone)
	defer cl.conn.Close()
	failed := false
	for line := range cl.out {
		if failed {
			continue
		}
		cl.conn.SetWriteDeadline(time.Now().Add(cl.cfg.WriteTimeout))
		if _, err := cl.conn.Write(line); err != nil {
			level := zerolog.WarnLevel
			if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
				level = zerolog.DebugLevel // The client left: nothing to fix.
			}
			cl.log.WithLevel(level).Err(err).Msg("client_write_failed")
			failed = true
			cl.conn.Close()
			continue
		}
		if len(cl.out) == 0 && cl.wantDrain.CompareAndSwap(true, false) {
			root.Send(proxy, &clientDrained{client: cl})
		}
	}
}

// clientDrained says a slow client's queue has emptied.
type clientDrained struct {
	client *client
}

// IgnoreDeadLetterLogging keeps a drain that outlives the proxy out of
// the dead-letter log.
func (*clientDrained) IgnoreDeadLetterLogging() {}

// close ends the writer, which flushes and then closes the connection.
func (cl *client) close() {
	if !cl.closed {
		cl.closed = true
		close(cl.out)
	}
}

// wait waits for the client's goroutines, closing the connection if the
// writer cannot flush within the write timeout.
func (cl *client) wait() {
	select {
	case <-cl.writerDone:
	case <-time.After(cl.cfg.WriteTimeout):
		cl.conn.Close()
		<-cl.writerDone
	}
	<-cl.readerDone
}

// peerUID returns the user ID of a unix connection's peer.
func peerUID(conn net.Conn) (uint32, bool) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return 0, false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var uid uint32
	found := false
	raw.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err == nil {
			uid, found = cred.Uid, true
		}
	})
	return uid, found
}

// peerFields logs the peer's credentials where the kernel reports them.
func peerFields(conn net.Conn) func(*zerolog.Event) {
	return func(e *zerolog.Event) {
		uc, ok := conn.(*net.UnixConn)
		if !ok {
			return
		}
		raw, err := uc.SyscallConn()
		if err != nil {
			return
		}
		raw.Control(func(fd uintptr) {
			cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
			if err == nil {
				e.Int32("peer_pid", cred.Pid).Uint32("peer_uid", cred.Uid)
			}
		})
	}
}
