package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

// startTimeout bounds how long Start waits for the tree to be up.
const startTimeout = 10 * time.Second

// An edge's crashes within edgeCrashWindow grow its restart backoff, up
// to edgeMaxBackoff.
const (
	edgeCrashWindow = time.Minute
	edgeMaxBackoff  = 10 * time.Second
)

// rootName is the name of the service's top actor; the manager is
// rootName/manager and its checks rootName/manager/<id>.
const rootName = "hc"

// Edge is an actor that connects the tree to the outside world, such as
// the socket proxy or the Engine bridge. It sends the manager
// *messages.UpdateConfigs and *messages.RequestStatus, and receives every
// *messages.NotificationBatch.
type Edge struct {
	// Name is the edge actor's name under the service's root.
	Name string
	// Props returns the edge's props, given the manager's PID.
	Props func(manager *actor.PID) *actor.Props
	// Close, if set, releases what the edge holds before it is spawned;
	// Start calls it for edges it could not spawn.
	Close func() error
}

// ServiceConfig configures a whole server.
type ServiceConfig struct {
	// Manager configures the manager; its Sink is set by Start.
	Manager ManagerConfig
	// Edges are spawned beside the manager.
	Edges []Edge
	// Logger receives the service's and the actor library's log lines.
	Logger zerolog.Logger
	// Telemetry measures the tree; Start makes one when it is nil.
	Telemetry *Telemetry
	// SystemOptions are passed to the actor system, e.g. the library's
	// own metrics.
	SystemOptions []actor.ConfigOption
}

// Service is a running supervision tree in its own actor system. Its
// methods are safe for concurrent use.
type Service struct {
	sys  *actor.ActorSystem
	root *actor.PID
	tel  *Telemetry
	// stopDeadLetters ends the dead-letter count.
	stopDeadLetters func()
	started         chan struct{}
	done            chan struct{}
	shutdown        sync.Once
	// failure says why the tree stopped by itself, if it did.
	failure atomic.Pointer[error]
}

// Start creates an actor system and spawns the tree: a root actor with the
// manager and the edges under it.
func Start(cfg ServiceConfig) (*Service, error) {
	if cfg.Manager.FaultStats == nil {
		cfg.Manager.FaultStats = &FaultStats{}
	}
	if cfg.Telemetry == nil {
		cfg.Telemetry = NewTelemetry()
	}
	cfg.Manager.Telemetry = cfg.Telemetry
	sys := NewSystem(cfg.Logger, cfg.SystemOptions...)
	s := &Service{
		sys:             sys,
		tel:             cfg.Telemetry,
		stopDeadLetters: cfg.Telemetry.WatchDeadLetters(sys),
		started:         make(chan struct{}),
		done:            make(chan struct{}),
	}
	props := cfg.Telemetry.Wrap("root", actor.PropsFromProducer(func() actor.Actor {
		return &supervisor{cfg: cfg, svc: s}
	}, actor.WithGuardian(rootGuardian(cfg.Logger))))
	pid, err := sys.Root.SpawnNamed(props, rootName)
	if err != nil {
		for _, e := range cfg.Edges {
			if e.Close != nil {
				e.Close()
			}
		}
		return nil, fmt.Errorf("start service: %w", err)
	}
	s.root = pid

	// Messages sent to the manager before it exists would be lost.
	select {
	case <-s.started:
		return s, nil
	case <-time.After(startTimeout):
		sys.Root.Stop(pid)
		return nil, errors.New("start service: the tree did not start in time")
	}
}

// Telemetry returns what measures the service.
func (s *Service) Telemetry() *Telemetry { return s.tel }

// System returns the service's actor system.
func (s *Service) System() *actor.ActorSystem { return s.sys }

// Manager returns the manager's PID.
func (s *Service) Manager() *actor.PID {
	return actor.NewPID(s.sys.Address(), rootName+"/manager")
}

// Done is closed when the tree has stopped: after Stop, or by itself when
// its manager or an edge died for good (see Err).
func (s *Service) Done() <-chan struct{} { return s.done }

// Err returns why the tree stopped by itself, or nil.
func (s *Service) Err() error {
	if err := s.failure.Load(); err != nil {
		return *err
	}
	return nil
}

// Stop drains the tree in order (checks stop, pending notifications reach
// the edges, the edges stop) and waits until it is done or ctx ends. It
// may be called more than once.
func (s *Service) Stop(ctx context.Context) error {
	s.sys.Root.Send(s.root, &drain{})
	select {
	case <-s.done:
		s.shutdown.Do(func() {
			s.stopDeadLetters()
			s.sys.Shutdown()
		})
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop service: %w", ctx.Err())
	}
}

// supervisor is the service's root actor. It routes notification batches
// from the manager to every edge, routes injected faults, and stops the
// tree in order.
//
// It accepts *messages.NotificationBatch, *messages.InjectFault, *drain to
// stop, and its own *restartDue.
type supervisor struct {
	unexpected unexpected
	cfg        ServiceConfig
	svc        *Service
	log        zerolog.Logger
	manager    *actor.PID
	edges      []*actor.PID
	// backoffs holds the restarts of crashed edges not yet due.
	backoffs backoffs
	// draining is set once the manager has been asked to stop.
	draining bool
}

// drain asks the root actor to stop the tree in order.
type drain struct{}

// stopEdges comes after every batch the manager flushed on stopping.
type stopEdges struct{}

// rootGuardian supervises the tree's root, hc. The library would restart
// a crashed hc, stopping every child with it: the manager and so every
// check, the proxy's listener and clients, the bridge's queue. Instead
// the crash is logged and hc resumes, without the message it failed on.
func rootGuardian(log zerolog.Logger) actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
		log.Error().Str("actor", "root").Str("reason", fmt.Sprint(reason)).
			Msg("root_crashed_resuming")
		return actor.ResumeDirective
	})
}

// Receive handles one message.
func (s *supervisor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *messages.NotificationBatch:
		for _, e := range s.edges {
			c.Send(e, m)
		}
	case *drain:
		s.handleDrain(c)
	case *stopEdges:
		for _, e := range s.edges {
			c.Poison(e)
		}
	case *actor.Terminated:
		s.handleTerminated(c, m)
	case *messages.InjectFault:
		s.routeFault(c, m)
	case *restartDue:
		s.handleRestartDue(m)
	case *actor.Started:
		s.handleStarted(c)
	case *actor.Stopped:
		close(s.svc.done)
	case *actor.Stopping, *actor.Restarting:
		s.backoffs.cancelAll()
	default:
		s.unexpected.log(s.log, m)
	}
}

func (s *supervisor) handleStarted(c actor.Context) {
	s.log = s.cfg.Logger.With().Str("actor", "root").Logger()
	s.backoffs.start(c)
	mcfg := s.cfg.Manager
	mcfg.Sink = c.Self()
	manager, err := c.SpawnNamed(
		s.cfg.Telemetry.Wrap("manager", NewManager(mcfg)), "manager")
	if err != nil {
		panic(fmt.Errorf("spawn manager: %w", err))
	}
	s.manager = manager
	s.edges = s.edges[:0]
	for _, e := range s.cfg.Edges {
		pid, err := c.SpawnNamed(s.cfg.Telemetry.Wrap(e.Name, e.Props(manager)), e.Name)
		if err != nil {
			panic(fmt.Errorf("spawn edge %s: %w", e.Name, err))
		}
		s.edges = append(s.edges, pid)
	}
	s.log.Info().Int("edges", len(s.edges)).Msg("service_started")
	select {
	case <-s.svc.started:
	default:
		close(s.svc.started)
	}
}

// routeFault forwards an injected fault to the actor it names: the
// manager for checks, the notifier and itself, or an edge by name. The
// target answers the original sender. The manager counts the faults it
// queues; the root counts those it hands an edge, which queues at most
// messages.MaxSingletonCrashes of them.
func (s *supervisor) routeFault(c actor.Context, f *messages.InjectFault) {
	switch f.Actor {
	case "", messages.ActorManager, messages.ActorNotifier:
		if s.manager != nil {
			c.Forward(s.manager)
			return
		}
	default:
		for _, e := range s.edges {
			if e.Id == c.Self().Id+"/"+f.Actor {
				s.cfg.Manager.FaultStats.countInjected(f.Fault,
					f.SingletonCrashes())
				c.Forward(e)
				return
			}
		}
	}
	c.Respond(&messages.Error{
		Message: fmt.Sprintf("inject_fault: no %s is running", f.Actor),
	})
}

// HandleFailure makes the root its children's supervisor strategy. A
// crashed manager resumes, keeping its children (a restart would stop
// every check), and counts as a resume, not a restart; a crashed edge
// restarts, after a backoff that grows with its recent crashes. The
// reason is logged once, here.
func (s *supervisor) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor,
	child *actor.PID, rs *actor.RestartStatistics, reason, _ any) {
	if s.manager != nil && child.Equal(s.manager) {
		s.cfg.Manager.FaultStats.ManagerResumes.Add(1)
		s.log.Error().Str("child", child.Id).Str("reason", fmt.Sprint(reason)).
			Msg("manager_crashed_resuming")
		sup.ResumeChildren(child)
		return
	}
	crashes := recentCrashes(rs, edgeCrashWindow)
	delay := restartBackoff(crashes, DefaultRestartBackoffMin, edgeMaxBackoff)
	s.log.Error().Str("child", child.Id).Str("reason", fmt.Sprint(reason)).
		Int("recent_crashes", crashes).Dur("restart_in", delay).
		Msg("edge_crashed_restarting")
	s.backoffs.schedule(sup, child, delay)
}

// handleRestartDue restarts a crashed edge whose backoff is over, unless
// the backoff was cancelled meanwhile.
func (s *supervisor) handleRestartDue(r *restartDue) {
	if s.backoffs.restart(r) {
		s.cfg.Manager.FaultStats.SingletonRestarts.Add(1)
	}
}

func (s *supervisor) handleDrain(c actor.Context) {
	if s.draining {
		return
	}
	s.draining = true
	s.log.Info().Msg("service_stopping")
	if s.manager != nil {
		c.Send(s.manager, &messages.Shutdown{})
	}
}

// handleTerminated moves the drain on: after the manager, the edges; after
// the last edge, the root itself. A child that dies outside a drain (its
// supervisor gave up restarting it) leaves the server without a part it
// needs, so the root drains the rest and reports why.
func (s *supervisor) handleTerminated(c actor.Context, m *actor.Terminated) {
	if !s.draining {
		err := fmt.Errorf("supervision tree stopped: %s terminated", m.Who.Id)
		s.svc.failure.Store(&err)
		s.log.Error().Str("child", m.Who.Id).Msg("child_terminated_stopping")
		s.handleDrain(c)
	}
	if s.manager != nil && m.Who.Equal(s.manager) {
		// NOTE: Terminated is a system message and overtakes the batches
		// the notifier flushed while stopping; a message to self queues
		// behind them.
		c.Send(c.Self(), &stopEdges{})
		s.manager = nil
		if len(s.edges) == 0 {
			c.Stop(c.Self())
		}
		return
	}
	for i, e := range s.edges {
		if e.Equal(m.Who) {
			s.edges = append(s.edges[:i], s.edges[i+1:]...)
			s.backoffs.cancel(e.Id)
			break
		}
	}
	if s.manager == nil && len(s.edges) == 0 {
		c.Stop(c.Self())
	}
}
