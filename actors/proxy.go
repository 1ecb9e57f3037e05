package actors

import (
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

// Defaults of ProxyConfig.
const (
	DefaultSocketMode   os.FileMode = 0o600
	DefaultMaxLineBytes             = 16 << 20
	DefaultClientQueue              = 1000
	DefaultWriteTimeout             = 10 * time.Second
	DefaultMaxClients               = 64
	DefaultMaxConfigs               = 250_000
)

// requestTimeout bounds how long a client's request waits for the actor
// that answers it.
const requestTimeout = 30 * time.Second

// ProxyConfig configures the socket proxy.
type ProxyConfig struct {
	// Path is the unix socket's path. A stale socket file is replaced; one
	// that a live server answers on is an error.
	Path string
	// Mode is the socket file's permission bits. Default 0600. The
	// socket is never reachable with other bits (or another group).
	Mode os.FileMode
	// MaxLineBytes bounds one line from a client; a longer line is
	// discarded with an error reply. Default 16 MiB.
	MaxLineBytes int
	// ClientQueue is how many lines may wait for a client's writer.
	// Beyond it, a slow client's notifications wait in a backlog that
	// keeps only the newest of each check (the older are counted as
	// superseded), and its replies wait in order (up to 1000; more are
	// dropped and counted). Default 1000.
	ClientQueue int
	// MaxClients bounds the clients connected at once; one more is told
	// so and disconnected. Default 64.
	MaxClients int
	// MaxConfigs bounds the configs of one update_configs; a longer one is
	// rejected whole. Default 250,000.
	MaxConfigs int
	// Group, if set, owns the socket file (with Mode, e.g. 0660, it lets
	// the group's members connect).
	Group string
	// AllowUIDs, if set, are the only user IDs (besides the server's own)
	// whose connections are served; others are told so and disconnected.
	AllowUIDs []uint32
	// WriteTimeout bounds one write to a client. Default 10s.
	WriteTimeout time.Duration
	// AllowShutdown lets clients stop the server with a shutdown message;
	// OnShutdown is then called, and must not block.
	AllowShutdown bool
	OnShutdown    func()
	// EnableFaultInjection lets clients inject faults (inject_fault,
	// clear_faults); without it they are refused with an error.
	EnableFaultInjection bool
	// Stats, if set, is updated as the proxy works.
	Stats *ProxyStats
	// Logger receives the proxy's log lines.
	Logger zerolog.Logger
}

// ProxyStats counts what a proxy did. Its fields are safe to read
// concurrently with the proxy running.
type ProxyStats struct {
	// Clients is the number of connected clients.
	Clients atomic.Int64
	// LinesRejected counts lines answered with an error.
	LinesRejected atomic.Uint64
	// LinesDropped counts replies not written to a client whose backlog
	// was full.
	LinesDropped atomic.Uint64
	// Superseded counts notifications a slow client never got because a
	// newer one of the same check replaced it in its backlog.
	Superseded atomic.Uint64
	// Refused counts connections turned away: too many clients, or a
	// user ID not allowed.
	Refused atomic.Uint64
}

func (cfg *ProxyConfig) applyDefaults() {
	if cfg.Mode == 0 {
		cfg.Mode = DefaultSocketMode
	}
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = DefaultMaxLineBytes
	}
	if cfg.ClientQueue <= 0 {
		cfg.ClientQueue = DefaultClientQueue
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.MaxConfigs <= 0 {
		cfg.MaxConfigs = DefaultMaxConfigs
	}
	if cfg.Stats == nil {
		cfg.Stats = &ProxyStats{}
	}
}

// proxy is the socket edge: it serves the JSON-lines protocol to every
// client of its unix socket.
//
// It accepts *messages.NotificationBatch (written to every client) and its
// own connection events. It sends *messages.UpdateConfigs and
// *messages.RequestStatus to the manager. Socket I/O runs in goroutines
// the proxy owns: one accept loop, and a reader and a writer per client.
// Its state lives in proxyState, so a restart keeps the listener and the
// connected clients.
type proxy struct {
	*proxyState
}

type proxyState struct {
	unexpected unexpected
	cfg        ProxyConfig
	log        zerolog.Logger
	ln         *socketListener
	manager    *actor.PID

	clients map[uint64]*client
	nextID  uint64

	// acceptDone is closed when the accept loop has returned; accepting
	// says whether it was started.
	acceptDone chan struct{}
	accepting  bool

	// unclaimed holds connections accepted but not yet taken up by the
	// actor, so a stop can close them.
	mu        sync.Mutex
	unclaimed map[net.Conn]bool
	// refusing tracks the goroutines telling refused connections why.
	refusing sync.WaitGroup
}

// clientConnected hands the proxy a new connection.
type clientConnected struct {
	conn net.Conn
}

// clientRequest carries one decoded line (or why it could not be).
type clientRequest struct {
	client *client
	msg    any
	err    error
}

// clientGone says a client's reader has ended.
type clientGone struct {
	client *client
}

// IgnoreDeadLetterLogging keeps messages from connections that outlive the
// proxy out of the dead-letter log.
func (*clientRequest) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see clientRequest.
func (*clientGone) IgnoreDeadLetterLogging() {}

// ListenProxy opens the proxy's socket and returns the edge that serves
// it. The socket is closed and removed when the edge's actor stops.
func ListenProxy(cfg ProxyConfig) (Edge, error) {
	cfg.applyDefaults()
	ln, err := listenUnix(cfg.Path, cfg.Mode, cfg.Group)
	if err != nil {
		return Edge{}, err
	}
	props := func(manager *actor.PID) *actor.Props {
		st := &proxyState{
			cfg:        cfg,
			log:        cfg.Logger.With().Str("actor", "proxy").Logger(),
			ln:         ln,
			manager:    manager,
			clients:    make(map[uint64]*client),
			acceptDone: make(chan struct{}),
			unclaimed:  make(map[net.Conn]bool),
		}
		return actor.PropsFromProducer(func() actor.Actor {
			return &proxy{proxyState: st}
		})
	}
	return Edge{Name: "proxy", Props: props, Close: ln.Close}, nil
}

// Receive handles one message.
func (p *proxy) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *messages.NotificationBatch:
		p.broadcast(m)
	case *clientRequest:
		p.handleRequest(c, m)
	case *clientConnected:
		p.handleConnected(c, m.conn)
	case *clientGone:
		p.remove(m.client)
	case *clientDrained:
		p.flushBacklog(m.client)
	case *messages.InjectFault:
		p.sufferFault(c, m)
	case *messages.Crash:
		panic(m.Reason)
	case *actor.Started:
		p.startAccepting(c)
	case *actor.Stopping:
		p.shutdown()
	case *actor.Stopped, *actor.Restarting:
	default:
		p.unexpected.log(p.log, m)
	}
}

func (p *proxy) startAccepting(c actor.Context) {
	if p.accepting {
		return
	}
	p.accepting = true
	p.log.Info().Str("socket", p.cfg.Path).Msg("proxy_listening")
	self, root := c.Self(), c.ActorSystem().Root
	go p.acceptLoop(self, root)
}

// acceptLoop runs until the listener is closed.
func (p *proxyState) acceptLoop(self *actor.PID, root *actor.RootContext) {
	defer close(p.acceptDone)
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.unclaimed[conn] = true
		p.mu.Unlock()
		root.Send(self, &clientConnected{conn: conn})
	}
}

func (p *proxy) handleConnected(c actor.Context, conn net.Conn) {
	p.mu.Lock()
	delete(p.unclaimed, conn)
	p.mu.Unlock()

	if reason := p.refusal(conn); reason != "" {
		p.refuse(conn, reason)
		return
	}
	p.nextID++
	cl := newClient(p.nextID, conn, p.cfg, p.log)
	p.clients[cl.id] = cl
	p.cfg.Stats.Clients.Add(1)
	cl.log.Info().Func(peerFields(conn)).Msg("client_connected")

	cl.start(c.Self(), c.ActorSystem().Root)
	p.send(cl, &messages.Ready{})
}

func (p *proxy) handleRequest(c actor.Context, r *clientRequest) {
	cl := r.client
	if p.clients[cl.id] != cl {
		return
	}
	if r.err != nil {
		p.reject(cl, &messages.Error{Message: r.err.Error()})
		return
	}
	switch m := r.msg.(type) {
	case *messages.UpdateConfigs:
		if n := len(m.Configs) + len(m.Rejected); n > p.cfg.MaxConfigs {
			p.reject(cl, &messages.Error{Message: fmt.Sprintf(
				"update_configs: %d configs, over the limit of %d "+
					"(-max_configs_per_message); nothing applied", n, p.cfg.MaxConfigs)})
			return
		}
		for _, rej := range m.Rejected {
			p.reject(cl, messages.ErrorFor(rej))
		}
		p.applyConfigs(c, cl, m)
	case *messages.RequestStatus:
		// The bridge tells a lost status by its error's prefix.
		p.ask(c, cl, p.manager, m, p.relay(cl, messages.StatusErrorPrefix))
	case *messages.Shutdown:
		p.handleShutdown(cl)
	case *messages.InjectFault, *messages.ClearFaults:
		p.handleFault(c, cl, m)
	default:
		p.reject(cl, &messages.Error{
			Message: fmt.Sprintf("unexpected message from a client: %T", m),
		})
	}
}

// applyConfigs sends a client's update to the manager, and answers the
// client with an error naming its id for each config the manager rejects
// itself, such as one over -max_checks. A lost answer goes unsaid: the
// update went out.
func (p *proxy) applyConfigs(c actor.Context, cl *client, m *messages.UpdateConfigs) {
	p.ask(c, cl, p.manager, m, func(res any, _ error) {
		if applied, ok := res.(*messages.ConfigsApplied); ok {
			for _, rej := range applied.Rejected {
				p.reject(cl, messages.ErrorFor(rej))
			}
		}
	})
}

// ask sends msg to target for a client and, in a later turn of the
// proxy, hands answered the answer or the error of getting none, unless
// the client left meanwhile.
func (p *proxy) ask(c actor.Context, cl *client, target *actor.PID, msg any,
	answered func(res any, err error)) {
	f := c.RequestFuture(target, msg, requestTimeout)
	c.ReenterAfter(f, func(res any, err error) {
		if p.clients[cl.id] == cl {
			answered(res, err)
		}
	})
}

// relay returns an answered func for ask that sends the answer on to the
// client, or an error whose message starts with prefix.
func (p *proxy) relay(cl *client, prefix string) func(res any, err error) {
	return func(res any, err error) {
		if err != nil {
			p.reject(cl, &messages.Error{Message: prefix + err.Error()})
			return
		}
		p.send(cl, res)
	}
}

// handleFault passes a client's inject_fault or clear_faults on: faults go
// through the root, which routes them to their target, and clearing goes
// to the manager. The answer goes back to the client.
func (p *proxy) handleFault(c actor.Context, cl *client, msg any) {
	if !p.cfg.EnableFaultInjection {
		p.reject(cl, &messages.Error{Message: "fault injection is disabled; " +
			"start the server with -enable_fault_injection"})
		return
	}
	target := p.manager
	if _, ok := msg.(*messages.InjectFault); ok {
		target = c.Parent()
	}
	p.ask(c, cl, target, msg, p.relay(cl, "fault: "))
}

// sufferFault takes an injected panic aimed at the proxy itself.
func (p *proxy) sufferFault(c actor.Context, f *messages.InjectFault) {
	queued := f.SingletonCrashes()
	c.Respond(f.Ack(queued))
	for range queued {
		c.Send(c.Self(), &messages.Crash{Reason: "injected fault: panic"})
	}
}

func (p *proxy) handleShutdown(cl *client) {
	if !p.cfg.AllowShutdown || p.cfg.OnShutdown == nil {
		p.reject(cl, &messages.Error{
			Message: "shutdown: not allowed; start the server with -allow_shutdown",
		})
		return
	}
	cl.log.Warn().Msg("shutdown_requested")
	p.cfg.OnShutdown()
}

func (p *proxy) reject(cl *client, e *messages.Error) {
	p.cfg.Stats.LinesRejected.Add(1)
	cl.log.Debug().Str("error", e.Message).Msg("line_rejected")
	p.send(cl, e)
}

// send encodes msg and queues it for one client.
func (p *proxy) send(cl *client, msg any) {
	line, err := messages.EncodeLine(msg)
	if err != nil {
		p.log.Error().Err(err).Msg("encode_failed")
		return
	}
	p.enqueue(cl, line)
}

func (p *proxy) broadcast(batch *messages.NotificationBatch) {
	if len(p.clients) == 0 {
		return
	}
	line, err := messages.EncodeLine(batch)
	if err != nil {
		p.log.Error().Err(err).Msg("encode_failed")
		return
	}
	for _, cl := range p.clients {
		if cl.closed {
			continue
		}
		if cl.backlog.empty() && cl.offer(line) {
			continue
		}
		p.holdBack(cl)
		n := cl.backlog.addNotes(batch.Notifications)
		p.cfg.Stats.Superseded.Add(uint64(n))
		p.kick(cl)
	}
}

// enqueue hands a reply to a client's writer without ever blocking: a
// client too slow to keep up gets it later, from its backlog.
func (p *proxy) enqueue(cl *client, line []byte) {
	if cl.closed {
		return
	}
	if cl.backlog.empty() && cl.offer(line) {
		return
	}
	p.holdBack(cl)
	if !cl.backlog.addReply(line) {
		p.cfg.Stats.LinesDropped.Add(1)
		cl.log.Warn().Msg("client_backlog_full_reply_dropped")
	}
	p.kick(cl)
}

// kick flushes the backlog itself when the writer emptied the queue
// before it could see that a backlog began; the flag's swap makes sure
// only one of the two does it.
func (p *proxy) kick(cl *client) {
	if len(cl.out) == 0 && cl.wantDrain.CompareAndSwap(true, false) {
		p.flushBacklog(cl)
	}
}

// holdBack starts keeping a backlog for a client whose queue is full, and
// asks its writer to say when the queue has emptied.
func (p *proxy) holdBack(cl *client) {
	if !cl.backlog.empty() {
		return
	}
	cl.log.Warn().Int("queue", cap(cl.out)).Msg("client_slow_holding_back")
	cl.wantDrain.Store(true)
}

// flushBacklog moves a slow client's backlog into its emptied queue:
// replies first, then one batch of the newest notifications.
func (p *proxy) flushBacklog(cl *client) {
	if p.clients[cl.id] != cl || cl.backlog.empty() {
		return
	}
	for len(cl.backlog.replies) > 0 && cl.offer(cl.backlog.replies[0]) {
		cl.backlog.replies = cl.backlog.replies[1:]
	}
	if len(cl.backlog.replies) == 0 && len(cl.backlog.order) > 0 {
		line, err := messages.EncodeLine(cl.backlog.takeNotes())
		if err == nil && !cl.offer(line) {
			cl.backlog.replies = append(cl.backlog.replies, line)
		}
	}
	if cl.backlog.empty() {
		cl.log.Info().Msg("client_caught_up")
		return
	}
	cl.wantDrain.Store(true)
}

// refusal says why conn may not be served, or "" when it may.
func (p *proxy) refusal(conn net.Conn) string {
	if len(p.clients) >= p.cfg.MaxClients {
		return fmt.Sprintf("too many clients (limit %d, -max_clients)", p.cfg.MaxClients)
	}
	if len(p.cfg.AllowUIDs) == 0 {
		return ""
	}
	uid, ok := peerUID(conn)
	switch {
	case !ok:
		return "peer credentials unavailable"
	case uid == uint32(os.Getuid()) || slices.Contains(p.cfg.AllowUIDs, uid):
		return ""
	}
	return fmt.Sprintf("user %d may not connect (-allow_uid)", uid)
}

// refuse tells a connection why it is refused and closes it, in a
// goroutine bounded by the write timeout.
func (p *proxy) refuse(conn net.Conn, reason string) {
	p.cfg.Stats.Refused.Add(1)
	p.log.Warn().Str("reason", reason).Func(peerFields(conn)).Msg("client_refused")
	line, _ := messages.EncodeLine(&messages.Error{Message: reason})
	p.refusing.Go(func() {
		defer conn.Close()
		conn.SetWriteDeadline(time.Now().Add(p.cfg.WriteTimeout))
		conn.Write(line)
	})
}

func (p *proxy) remove(cl *client) {
	if p.clients[cl.id] != cl {
		return
	}
	delete(p.clients, cl.id)
	p.cfg.Stats.Clients.Add(-1)
	cl.close()
	cl.log.Info().Msg("client_disconnected")
}

// shutdown closes the socket and every connection, flushing what each
// client's writer still holds within the write timeout.
func (p *proxy) shutdown() {
	p.ln.Close()
	if p.accepting {
		<-p.acceptDone
	}
	p.mu.Lock()
	for conn := range p.unclaimed {
		conn.Close()
	}
	clear(p.unclaimed)
	p.mu.Unlock()

	p.refusing.Wait()
	for _, cl := range p.clients {
		cl.close()
	}
	for id, cl := range p.clients {
		cl.wait()
		delete(p.clients, id)
		p.cfg.Stats.Clients.Add(-1)
	}
	p.log.Info().Msg("proxy_stopped")
}
