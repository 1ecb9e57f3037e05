package bridge

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

// Split is the bridge of the split deployment, running in an actor system
// of its own: a link to the server's socket and the Engine edge feeding
// it.
type Split struct {
	sys  *actor.ActorSystem
	link *actor.PID
	edge *actor.PID
}

// Names of the split deployment's actors.
const (
	splitLinkName = "link"
	splitEdgeName = "bridge"
)

// StartSplit spawns the link and the edge in sys, each addressing the
// other by name. It sets link.Sink.
func StartSplit(sys *actor.ActorSystem, link LinkConfig, edge EdgeConfig) (*Split, error) {
	link.Sink = actor.NewPID(sys.Address(), splitEdgeName)
	linkPID, err := sys.Root.SpawnNamed(NewLink(link), splitLinkName)
	if err != nil {
		return nil, fmt.Errorf("start split bridge: %w", err)
	}
	edgePID, err := sys.Root.SpawnNamed(NewEdge(edge)(linkPID), splitEdgeName)
	if err != nil {
		sys.Root.Stop(linkPID)
		return nil, fmt.Errorf("start split bridge: %w", err)
	}
	return &Split{sys: sys, link: linkPID, edge: edgePID}, nil
}

// Stop stops the edge first, so that it flushes what it holds to the
// Engine, then the link. Each step is bounded by the library's 10s stop
// timeout.
func (s *Split) Stop() error {
	if err := s.sys.Root.PoisonFuture(s.edge).Wait(); err != nil {
		return fmt.Errorf("stop bridge: %w", err)
	}
	if err := s.sys.Root.PoisonFuture(s.link).Wait(); err != nil {
		return fmt.Errorf("stop link: %w", err)
	}
	return nil
}
