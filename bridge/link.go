package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

// Defaults of LinkConfig.
const (
	DefaultServerSocket     = "/var/run/seesaw/healthcheck-proxy.sock"
	DefaultReconnectDelay   = time.Second
	DefaultMaxReconnect     = 10 * time.Second
	DefaultLinkWriteTimeout = 10 * time.Second
	DefaultReadyTimeout     = 10 * time.Second
	// linkMaxLine bounds a line from the server: a status response for a
	// large fleet is big, but not unbounded.
	linkMaxLine = 256 << 20
)

// LinkConfig configures the link to a server's JSON-lines socket.
type LinkConfig struct {
	// Socket is the server's socket. Default DefaultServerSocket.
	Socket string
	// Sink receives every *messages.NotificationBatch from the server.
	Sink *actor.PID
	// ReconnectDelay is the first wait before reconnecting; it doubles up
	// to MaxReconnectDelay. Defaults 1s and 10s.
	ReconnectDelay    time.Duration
	MaxReconnectDelay time.Duration
	// WriteTimeout bounds one write to the server. Default 10s.
	WriteTimeout time.Duration
	// ReadyTimeout bounds the wait for the server's ready line after
	// connecting; a server that accepts but never says ready is left
	// and dialled again. Default 10s.
	ReadyTimeout time.Duration
	// Logger receives the link's log lines.
	Logger zerolog.Logger
}

func (cfg *LinkConfig) applyDefaults() {
	if cfg.Socket == "" {
		cfg.Socket = DefaultServerSocket
	}
	if cfg.ReconnectDelay <= 0 {
		cfg.ReconnectDelay = DefaultReconnectDelay
	}
	if cfg.MaxReconnectDelay < cfg.ReconnectDelay {
		cfg.MaxReconnectDelay = max(DefaultMaxReconnect, cfg.ReconnectDelay)
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultLinkWriteTimeout
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
}

// NewLink returns the props of a link: the split deployment's stand-in
// for the manager. It keeps a connection to the server's socket, and
// reconnects (with backoff) whenever it is lost.
//
// It accepts *messages.UpdateConfigs, sent to the server as update_configs
// and sent again at once after every reconnect, and
// *messages.RequestStatus, answered with the server's
// *messages.StatusResponse, or with *messages.Error when the server fails
// the request or the connection is lost first. It sends the Sink every
// notification_batch the server writes.
func NewLink(cfg LinkConfig) *actor.Props {
	return newLink(cfg, false)
}

// newLink is NewLink with the first dial held, when held is set, until the
// link receives a *linkDial: StartSplit holds it until the Sink exists, so
// that nothing the server sends at once is lost as a dead letter.
func newLink(cfg LinkConfig, held bool) *actor.Props {
	cfg.applyDefaults()
	l := &link{
		cfg:  cfg,
		log:  cfg.Logger.With().Str("actor", "link").Logger(),
		held: held,
	}
	// NOTE: every incarnation is the same value, so a restart keeps the
	// connection and the configs to resend.
	return actor.PropsFromProducer(func() actor.Actor { return l })
}

// link is the split deployment's connection to the server; see NewLink.
type link struct {
	unexpected unexpected
	cfg        LinkConfig
	log        zerolog.Logger
	self       *actor.PID
	root       *actor.RootContext
	// held keeps the link from dialing until its first *linkDial.
	held bool

	// gen numbers connections, so events of an old one are ignored.
	gen     uint64
	conn    *linkConn
	dialing *call
	timer   *time.Timer
	backoff time.Duration

	// configs is the last update, sent again after each reconnect.
	configs *messages.UpdateConfigs
	// waiters are the askers of status requests the server has not
	// answered, oldest first.
	waiters []*actor.PID
	// guard filters the link's own status request on connect.
	guard snapshotGuard
}

// linkConn is one connection with its reader and writer goroutines.
type linkConn struct {
	conn  net.Conn
	ready bool
	// readyTimer ends the wait for the ready line.
	readyTimer *time.Timer
	out        chan []byte
	readerDone chan struct{}
	writerDone chan struct{}
}

type (
	linkDial    struct{}
	linkDialled struct {
		conn net.Conn
		err  error
	}
	linkLine struct {
		gen uint64
		msg any
		err error
	}
	linkDown struct {
		gen uint64
		err error
	}
	linkReadyDue struct{ gen uint64 }
)

// IgnoreDeadLetterLogging keeps events of connections that outlive the
// link out of the dead-letter log.
func (*linkLine) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see linkLine.
func (*linkDown) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see linkLine.
func (*linkReadyDue) IgnoreDeadLetterLogging() {}

// Receive handles one message.
func (l *link) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *messages.UpdateConfigs:
		l.configs = m
		l.sendConfigs()
	case *messages.RequestStatus:
		l.handleRequestStatus(c)
	case *linkLine:
		l.handleLine(c, m)
	case *linkDown:
		l.handleDown(c, m)
	case *linkReadyDue:
		l.handleReadyDue(m)
	case *linkDial:
		l.timer, l.held = nil, false
		l.dial()
	case *linkDialled:
		l.handleDialled(m)
	case *actor.Started:
		l.self, l.root = c.Self(), c.ActorSystem().Root
		if l.conn == nil && !l.held {
			l.dial()
		}
	case *actor.Stopping:
		l.halt(c)
	case *actor.Restarting, *actor.Stopped:
	default:
		l.unexpected.log(l.log, m)
	}
}

func (l *link) dial() {
	if l.dialing != nil || l.conn != nil {
		return
	}
	socket, timeout := l.cfg.Socket, l.cfg.WriteTimeout
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cl := &call{cancel: cancel, done: make(chan struct{})}
	self, root := l.self, l.root
	go func() {
		defer close(cl.done)
		defer cancel()
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", socket)
		root.Send(self, &linkDialled{conn: conn, err: err})
	}()
	l.dialing = cl
}

func (l *link) handleDialled(m *linkDialled) {
	l.dialing = nil
	if m.err != nil {
		l.retry(m.err)
		return
	}
	l.gen++
	l.conn = &linkConn{
		conn:       m.conn,
		out:        make(chan []byte, 64),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	gen, self, root := l.gen, l.self, l.root
	l.conn.readyTimer = time.AfterFunc(l.cfg.ReadyTimeout, func() {
		root.Send(self, &linkReadyDue{gen: gen})
	})
	go l.conn.read(l.gen, l.self, l.root)
	go l.conn.write(l.cfg.WriteTimeout, l.log)
	l.log.Info().Str("socket", l.cfg.Socket).Msg("server_connected")
}

// handleReadyDue leaves a connection whose server never said ready; the
// reader then ends it, and the link dials again.
func (l *link) handleReadyDue(m *linkReadyDue) {
	if l.conn == nil || m.gen != l.gen || l.conn.ready {
		return
	}
	l.log.Warn().Dur("waited", l.cfg.ReadyTimeout).
		Msg("server_not_ready_reconnecting")
	l.conn.conn.Close()
}

// retry schedules the next dial with exponential backoff.
func (l *link) retry(err error) {
	if l.backoff == 0 {
		l.backoff = l.cfg.ReconnectDelay
	} else {
		l.backoff = min(2*l.backoff, l.cfg.MaxReconnectDelay)
	}
	l.log.Warn().Err(err).Dur("retry_in", l.backoff).Msg("server_unreachable")
	self, root := l.self, l.root
	l.timer = time.AfterFunc(l.backoff, func() { root.Send(self, &linkDial{}) })
}

func (l *link) handleLine(c actor.Context, m *linkLine) {
	if l.conn == nil || m.gen != l.gen {
		return
	}
	if m.err != nil {
		l.log.Warn().Err(m.err).Msg("server_line_rejected")
		return
	}
	switch msg := m.msg.(type) {
	case *messages.Ready:
		l.conn.ready = true
		l.conn.readyTimer.Stop()
		l.backoff = 0
		l.log.Info().Msg("server_ready")
		l.sendConfigs()
		// Ask for every status first, for the Sink: changes made while no
		// bridge was connected reach the Engine now, not at the next
		// periodic status. A nil waiter stands for that request.
		l.waiters = append([]*actor.PID{nil}, l.waiters...)
		l.guard.asked()
		for range l.waiters {
			l.enqueue(&messages.RequestStatus{})
		}
	case *messages.NotificationBatch:
		l.guard.passed(msg.Notifications)
		if l.cfg.Sink != nil {
			c.Send(l.cfg.Sink, msg)
		}
	case *messages.StatusResponse:
		l.answer(c, msg)
	case *messages.Error:
		l.handleError(c, msg)
	default:
		l.log.Warn().Str("type", fmt.Sprintf("%T", msg)).Msg("unexpected_line")
	}
}

func (l *link) handleRequestStatus(c actor.Context) {
	if c.Sender() == nil {
		return
	}
	l.waiters = append(l.waiters, c.Sender())
	if l.conn != nil && l.conn.ready {
		l.enqueue(&messages.RequestStatus{})
	}
}

// handleError takes an error line. One that fails a status request
// answers the oldest waiter, as a status_response would; the others
// (rejected configs, lines) are logged.
//
// NOTE: the error line carries no reference to the request it fails;
// messages.StatusErrorPrefix is the only mark, and the server answers
// status requests in their order.
func (l *link) handleError(c actor.Context, e *messages.Error) {
	if e.ID == nil && strings.HasPrefix(e.Message, messages.StatusErrorPrefix) {
		l.log.Warn().Str("error", e.Message).Msg("server_status_failed")
		switch w, ok := l.popWaiter(); {
		case w != nil:
			c.Send(w, e)
		case ok:
			l.guard.answered(nil)
		}
		return
	}
	ev := l.log.Warn().Str("error", e.Message)
	if e.ID != nil {
		ev = ev.Uint64("id", *e.ID)
	}
	ev.Msg("server_error")
}

// popWaiter removes and returns the oldest waiter, which is nil for the
// link's own request; ok is false when none waits.
func (l *link) popWaiter() (w *actor.PID, ok bool) {
	if len(l.waiters) == 0 {
		return nil, false
	}
	w = l.waiters[0]
	l.waiters = l.waiters[1:]
	return w, true
}

// answer hands a status response to the oldest waiter. The link's own
// request goes to the Sink as a periodic batch, so that the changes
// queued there go first, without the statuses that notifications passed
// on meanwhile made old.
func (l *link) answer(c actor.Context, sr *messages.StatusResponse) {
	w, ok := l.popWaiter()
	switch {
	case !ok:
		return
	case w != nil:
		c.Send(w, sr)
		return
	}
	known := l.guard.answered(sr.Statuses)
	if len(known) > 0 && l.cfg.Sink != nil {
		c.Send(l.cfg.Sink, &messages.NotificationBatch{
			Notifications: known, Periodic: true,
		})
	}
}

func (l *link) sendConfigs() {
	if l.configs != nil && l.conn != nil && l.conn.ready {
		l.enqueue(l.configs)
	}
}

// enqueue hands a line to the writer. A full queue means the server stopped
// reading; the connection is dropped and the link reconnects.
func (l *link) enqueue(msg any) {
	line, err := messages.EncodeLine(msg)
	if err != nil {
		l.log.Error().Err(err).Msg("encode_failed")
		return
	}
	select {
	case l.conn.out <- line:
	default:
		l.log.Warn().Msg("server_not_reading_reconnecting")
		l.conn.conn.Close()
	}
}

func (l *link) handleDown(c actor.Context, m *linkDown) {
	if l.conn == nil || m.gen != l.gen {
		return
	}
	l.closeConn()
	// Status requests now go unanswered by this connection; the server's
	// next one starts afresh.
	for _, w := range l.waiters {
		if w != nil {
			c.Send(w, &messages.Error{Message: "connection to server lost"})
		}
	}
	l.waiters = nil
	l.guard.cancel()
	err := m.err
	if err == nil {
		err = errors.New("server closed the connection")
	}
	l.retry(err)
}

func (l *link) closeConn() {
	l.conn.readyTimer.Stop()
	close(l.conn.out)
	<-l.conn.writerDone
	<-l.conn.readerDone
	l.conn = nil
}

func (l *link) halt(c actor.Context) {
	if l.timer != nil {
		l.timer.Stop()
	}
	if l.dialing != nil {
		l.dialing.cancel()
		<-l.dialing.done
		l.dialing = nil
	}
	if l.conn != nil {
		l.closeConn()
	}
	for _, w := range l.waiters {
		if w != nil {
			c.Send(w, &messages.Error{Message: "link stopped"})
		}
	}
	l.waiters = nil
	l.guard.cancel()
}

// read decodes lines until the connection ends.
func (lc *linkConn) read(gen uint64, self *actor.PID, root *actor.RootContext) {
	defer close(lc.readerDone)
	sc := bufio.NewScanner(lc.conn)
	sc.Buffer(make([]byte, 64<<10), linkMaxLine)
	for sc.Scan() {
		msg, err := messages.DecodeLine(sc.Bytes())
		root.Send(self, &linkLine{gen: gen, msg: msg, err: err})
	}
	root.Send(self, &linkDown{gen: gen, err: sc.Err()})
}

// write sends queued lines until the queue is closed, then closes the
// connection, which ends the reader.
func (lc *linkConn) write(timeout time.Duration, log zerolog.Logger) {
	defer close(lc.writerDone)
	defer lc.conn.Close()
	for line := range lc.out {
		lc.conn.SetWriteDeadline(time.Now().Add(timeout))
		if _, err := lc.conn.Write(line); err != nil {
			log.Warn().Err(err).Msg("server_write_failed")
			lc.conn.Close()
			for range lc.out {
			}
			return
		}
	}
}
