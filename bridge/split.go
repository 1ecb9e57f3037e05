package bridge

import (
	"fmt"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// Split is the bridge of the split deployment, running in an actor system
// of its own: a link to the server's socket and the Engine edge feeding
// it.
type Split struct {
	sys     *actor.ActorSystem
	link    *actor.PID
	edge    *actor.PID
	watcher *actor.PID
	// died is closed when the link or the edge terminated for good;
	// stopping is set by Stop, so that its own stops do not count.
	died     chan struct{}
	stopping atomic.Bool
}

// Names of the split deployment's actors.
const (
	splitLinkName = "link"
	splitEdgeName = "bridge"
)

// Wrapper adds to the props of one actor of a kind ("link", "bridge"),
// as actors.Telemetry's Wrap does to measure it.
type Wrapper func(kind string, props *actor.Props) *actor.Props

// StartSplit spawns the link and the edge in sys, the link addressing the
// edge by name, their props passed through wrap unless it is nil. It sets
// link.Sink. The link connects to the server only once the edge exists,
// so the statuses the server sends at once reach it.
func StartSplit(sys *actor.ActorSystem, link LinkConfig, edge EdgeConfig,
	wrap Wrapper) (*Split, error) {
	if wrap == nil {
		wrap = func(_ string, props *actor.Props) *actor.Props { return props }
	}
	link.Sink = actor.NewPID(sys.Address(), splitEdgeName)
	linkPID, err := sys.Root.SpawnNamed(
		wrap(splitLinkName, newLink(link, true)), splitLinkName)
	if err != nil {
		return nil, fmt.Errorf("start split bridge: %w", err)
	}
	edgePID, err := sys.Root.SpawnNamed(
		wrap(splitEdgeName, NewEdge(edge)(linkPID)), splitEdgeName)
	if err != nil {
		sys.Root.Stop(linkPID)
		return nil, fmt.Errorf("start split bridge: %w", err)
	}
	// The edge exists now: what the server sends at once reaches it.
	sys.Root.Send(linkPID, &linkDial{})
	sp := &Split{sys: sys, link: linkPID, edge: edgePID, died: make(chan struct{})}
	sp.watcher = sys.Root.Spawn(actor.PropsFromFunc(sp.watch))
	return sp, nil
}

// Died is closed when the link or the edge terminated by itself, as when
// its supervisor gave up on it: the split bridge no longer works.
func (s *Split) Died() <-chan struct{} { return s.died }

// watch closes died when a watched actor terminates outside Stop.
func (s *Split) watch(c actor.Context) {
	switch c.Message().(type) {
	case *actor.Started:
		c.Watch(s.link)
		c.Watch(s.edge)
	case *actor.Terminated:
		if !s.stopping.Load() {
			select {
			case <-s.died:
			default:
				close(s.died)
			}
		}
	}
}

// Stop stops the edge first, so that it flushes what it holds to the
// Engine, then the link. Each step is bounded by the library's 10s stop
// timeout.
func (s *Split) Stop() error {
	s.stopping.Store(true)
	s.sys.Root.Stop(s.watcher)
	if err := s.sys.Root.PoisonFuture(s.edge).Wait(); err != nil {
		return fmt.Errorf("stop bridge: %w", err)
	}
	if err := s.sys.Root.PoisonFuture(s.link).Wait(); err != nil {
		return fmt.Errorf("stop link: %w", err)
	}
	return nil
}
