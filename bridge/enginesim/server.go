package enginesim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/rpc"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/bridge"
)

// DefaultHistory is how many notifications Received keeps by default.
const DefaultHistory = 1024

// serviceName is the name the Engine registers its RPC service under.
const serviceName = "SeesawEngine"

// probeTimeout bounds Listen's dial that tells a live socket from a
// stale one.
const probeTimeout = time.Second

// acceptBackoff is the pause after a failed accept, e.g. for lack of file
// descriptors, before the next one.
const acceptBackoff = 50 * time.Millisecond

// Config configures a Server.
type Config struct {
	// IDBase is the first ID the Server assigns. Zero means the Engine's:
	// the low 16 bits of the process ID, shifted left by 48.
	IDBase uint64
	// PingIDBase is the echo ID of the first icmp check; each new icmp
	// check takes the next. Zero means one derived from the process ID,
	// as the Engine's is.
	PingIDBase uint16
	// History is how many notifications Received keeps; zero means
	// DefaultHistory, negative none.
	History int
	// OnNotify, if set, is called with every notification of an accepted
	// HealthState call, after it has been recorded. It runs on the call's
	// goroutine, so calls on different connections may overlap, and a
	// slow OnNotify delays the reply.
	OnNotify func(bridge.Notification)
	// Logger receives the Server's logs; the zero value discards them.
	Logger zerolog.Logger
}

// DefaultConfig returns the Engine's numbering and DefaultHistory.
func DefaultConfig() Config {
	pid := uint64(os.Getpid())
	return Config{
		IDBase:     (pid & 0xFFFF) << 48,
		PingIDBase: uint16(pid*0x9E37 + 1),
		History:    DefaultHistory,
	}
}

// Server is a simulated Seesaw Engine: it serves the Engine's RPC service
// on a unix socket, answering with the checks it was given and recording
// the notifications it receives. Its methods are safe for concurrent use.
// Create it with New; the zero value is not usable.
type Server struct {
	cfg Config

	mu     sync.Mutex // guards reg, faults and obs
	reg    registry
	faults faults
	obs    observations

	lmu sync.Mutex // guards l; held by Listen and Close
	l   *listener  // nil when not listening
}

// faults are the failures the Server has been told to simulate.
type faults struct {
	healthchecksErr string
	healthStateErr  string
	hang            bool
	release         chan struct{} // closed when hanging ends
}

// New returns a Server that serves no checks and does not listen yet.
// Zero fields of cfg take their DefaultConfig values.
func New(cfg Config) *Server {
	def := DefaultConfig()
	if cfg.IDBase == 0 {
		cfg.IDBase = def.IDBase
	}
	if cfg.PingIDBase == 0 {
		cfg.PingIDBase = def.PingIDBase
	}
	if cfg.History == 0 {
		cfg.History = def.History
	}
	s := &Server{cfg: cfg}
	s.reg.next = cfg.IDBase
	s.reg.nextPing = cfg.PingIDBase
	s.obs.states = make(map[uint64]bridge.Status)
	s.obs.history.max = cfg.History
	s.obs.changed = make(chan struct{})
	return s
}

// SetChecks replaces the served checks by checks. As in the Engine, a
// check without an explicit ID keeps its ID and its very config while its
// content is unchanged, and gets a new ID when it changes or reappears
// after it was removed; identical checks share one ID. States of IDs no
// longer served are forgotten.
//
// NOTE: an invalid check fails the whole call, leaving the served set as
// it was, where the Engine would only leave that check out: a simulator
// should say so rather than quietly serve a part. The error joins one
// *CheckError per invalid check.
func (s *Server) SetChecks(checks []Check) (Update, error) {
	specs, err := normalizeAll(checks)
	if err != nil {
		return Update{}, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.reg.apply(checks, specs)
	if err != nil {
		return Update{}, fmt.Errorf("setting checks: %w", err)
	}
	for id := range s.obs.states {
		if _, ok := s.reg.configs[id]; !ok {
			delete(s.obs.states, id)
		}
	}
	s.obs.counts.Updates++
	s.obs.changedLocked()
	return u, nil
}

// Configs returns the served configs by ID: the map's own copy, whose
// configs the caller must not modify. It is nil when none are served.
func (s *Server) Configs() map[uint64]*bridge.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.reg.configs)
}

// Config returns the served config of id, or nil. The caller must not
// modify it.
func (s *Server) Config(id uint64) *bridge.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reg.configs[id]
}

// SetHealthchecksError makes every later Healthchecks call that passes
// the access checks fail with text; empty restores the normal reply.
func (s *Server) SetHealthchecksError(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.healthchecksErr = text
}

// SetHealthStateError makes every later HealthState call that passes the
// access checks fail with text, recording nothing; empty restores the
// normal reply.
func (s *Server) SetHealthStateError(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.healthStateErr = text
}

// SetHang(true) makes every later call block until its client closes the
// connection, the Server closes, or SetHang(false), which releases the
// blocked calls to be answered normally.
func (s *Server) SetHang(hang bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case hang && !s.faults.hang:
		s.faults.release = make(chan struct{})
	case !hang && s.faults.hang:
		close(s.faults.release)
	}
	s.faults.hang = hang
}

// Listen serves the Engine's RPC service on a unix socket at socketPath,
// replacing a stale socket there. It returns once the socket accepts
// connections; the Server serves them until Close. Listen may be called
// again after Close, e.g. on the same path to simulate an Engine restart.
func (s *Server) Listen(socketPath string) error {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.l != nil {
		return fmt.Errorf("listening on %s: %w", socketPath, ErrListening)
	}
	if err := removeStale(socketPath); err != nil {
		return fmt.Errorf("listening on %s: %w", socketPath, err)
	}
	ln, err := net.Listen("unix", socketPath)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}

	s.l = &listener{ln: ln, conns: make(map[net.Conn]struct{})}
	s.l.wg.Add(1)
	go s.accept(s.l)
	s.cfg.Logger.Info().Str("socket", socketPath).Msg("engine_listening")
	return nil
}

// removeStale removes the socket at path unless a process accepts
// connections on it. A missing path is fine; anything but a socket is an
// error.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode()&os.ModeSocket == 0:
		return ErrNotSocket
	}
	if conn, err := net.DialTimeout("unix", path, probeTimeout); err == nil {
		conn.Close()
		return ErrInUse
	}
	return os.Remove(path)
}

// Close stops listening, removes the socket, closes every open
// connection, which ends any call they hold, and waits for the Server's
// goroutines. Close on a Server that does not listen does nothing.
func (s *Server) Close() error {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.l == nil {
		return nil
	}
	err := s.l.close()
	s.l.wg.Wait()
	s.l = nil
	s.cfg.Logger.Info().Msg("engine_closed")
	if err != nil {
		return fmt.Errorf("closing: %w", err)
	}
	return nil
}

// listener is one Listen's socket and the connections it accepted.
type listener struct {
	ln net.Listener
	wg sync.WaitGroup // the accept loop and one per connection

	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
	closed bool
}

// track records conn and counts its goroutine in l.wg, unless l is
// closed.
func (l *listener) track(conn net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[conn] = struct{}{}
	l.wg.Add(1)
	return true
}

// untrack forgets conn.
func (l *listener) untrack(conn net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, conn)
}

// isClosed reports whether close has been called.
func (l *listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// close closes the socket and every tracked connection.
func (l *listener) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	err := l.ln.Close()
	for conn := range l.conns {
		conn.Close()
	}
	return err
}

// accept serves every connection l accepts, until l is closed.
func (s *Server) accept(l *listener) {
	defer l.wg.Done()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if l.isClosed() {
				return
			}
			s.cfg.Logger.Warn().Err(err).Msg("accept_failed")
			time.Sleep(acceptBackoff)
			continue
		}
		if !l.track(conn) {
			conn.Close()
			return
		}
		go s.serve(l, conn)
	}
}

// serve answers the calls on conn with an RPC server of its own, whose
// service knows when conn has gone, until conn closes.
func (s *Server) serve(l *listener, conn net.Conn) {
	defer l.wg.Done()
	defer l.untrack(conn)

	ctx, gone := context.WithCancel(context.Background())
	defer gone()
	srv := rpc.NewServer()
	svc := &service{s: s, gone: ctx.Done()}
	if err := srv.RegisterName(serviceName, svc); err != nil {
		s.cfg.Logger.Error().Err(err).Msg("rpc_register_failed")
		conn.Close()
		return
	}

	s.connOpened()
	defer s.connClosed()
	srv.ServeConn(&watchedConn{Conn: conn, gone: gone})
}

// connOpened counts a new connection.
func (s *Server) connOpened() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.obs.counts.Connections++
	s.obs.open++
	s.obs.changedLocked()
}

// connClosed counts a connection's end.
func (s *Server) connClosed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.obs.open--
	s.obs.changedLocked()
}

// watchedConn calls gone when a read fails: the client has closed the
// connection, or Close has.
//
// NOTE: net/rpc's server reads the next request while a call runs, so a
// failed read is how a hanging call learns that its client gave up.
type watchedConn struct {
	net.Conn
	gone context.CancelFunc
}

// Read reads from the connection, calling gone when it fails.
func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.gone()
	}
	return n, err
}
