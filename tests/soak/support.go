package main

import (
	"net/netip"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
)

type netipAddrPort = netip.AddrPort

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// actorsSystem is the split bridge's own actor system.
type actorsSystem struct {
	sys *actor.ActorSystem
	// stopDeadLetters ends the count of its dead letters.
	stopDeadLetters func()
}

func newActorsSystem(log zerolog.Logger) *actorsSystem {
	return &actorsSystem{sys: actors.NewSystem(log)}
}
