package messages

import (
	"fmt"
	"slices"
)

// Fault names a kind of fault that can be injected into a check.
type Fault string

// The faults a check can be given. Each applies to the check's next
// probes, one per probe, until its count is used up.
const (
	// FaultPanic panics inside the check's actor, which its supervisor
	// then restarts.
	FaultPanic Fault = "panic"
	// FaultHang holds the probe until its timeout has passed.
	FaultHang Fault = "hang"
	// FaultError fails the probe without touching the network.
	FaultError Fault = "error"
	// FaultSlow delays the probe by half its timeout, then runs it.
	FaultSlow Fault = "slow"
	// FaultFlap alternates the probe's results: failure, success, ...
	FaultFlap Fault = "flap"
)

// Faults lists every kind of fault, in a stable order.
var Faults = []Fault{FaultPanic, FaultHang, FaultError, FaultSlow, FaultFlap}

// Actors that accept an injected panic besides checks.
const (
	ActorManager  = "manager"
	ActorNotifier = "notifier"
	ActorProxy    = "proxy"
	ActorBridge   = "bridge"
)

// FaultActors lists the actors an InjectFault may name.
var FaultActors = []string{ActorManager, ActorNotifier, ActorProxy, ActorBridge}

// MaxFaultCount bounds InjectFault.Count.
const MaxFaultCount = 1_000_000

// MaxSingletonCrashes bounds the panics one InjectFault queues for a
// singleton (the manager, notifier, proxy or bridge): a Count above it
// queues this many, and the acknowledgement says so.
const MaxSingletonCrashes = 100

// InjectFault gives a check, or one of the tree's singletons, a fault to
// suffer: the next Count probes of check ID, or Count panics of Actor.
// The server accepts it only when fault injection is enabled.
type InjectFault struct {
	ID    uint64
	Actor string
	Fault Fault
	Count int
}

// Validate reports what is wrong with f; it expects Count's default (1)
// to have been applied.
func (f *InjectFault) Validate() error {
	switch {
	case !slices.Contains(Faults, f.Fault):
		return fmt.Errorf("fault: unknown fault %q (want one of %v)", f.Fault, Faults)
	case f.Count < 1 || f.Count > MaxFaultCount:
		return fmt.Errorf("count: must be within 1-%d, got %d", MaxFaultCount, f.Count)
	case f.Actor == "":
		return nil
	case !slices.Contains(FaultActors, f.Actor):
		return fmt.Errorf("actor: unknown actor %q (want one of %v)", f.Actor, FaultActors)
	case f.ID != 0:
		return fmt.Errorf("id: not allowed with actor")
	case f.Fault != FaultPanic:
		return fmt.Errorf("fault: actor %s accepts only %s", f.Actor, FaultPanic)
	}
	return nil
}

// SingletonCrashes returns how many panics f queues for a singleton: its
// Count, at most MaxSingletonCrashes.
func (f *InjectFault) SingletonCrashes() int {
	return min(f.Count, MaxSingletonCrashes)
}

// Ack returns the acknowledgement of f when queued of its Count faults
// were queued, the rest being over a bound.
func (f *InjectFault) Ack(queued int) *Ack {
	target := fmt.Sprintf("check %d", f.ID)
	if f.Actor != "" {
		target = f.Actor
	}
	msg := fmt.Sprintf("injected %d× %s into %s", queued, f.Fault, target)
	if queued < f.Count {
		msg += fmt.Sprintf(" (%d asked; the rest are over the bound)", f.Count)
	}
	return &Ack{Message: msg}
}

// ClearFaults removes the faults not yet suffered: of check ID, or of
// every check when All is set.
type ClearFaults struct {
	ID  uint64
	All bool
}

// Ack confirms a request that has no other answer, such as InjectFault.
type Ack struct {
	Message string `json:"message"`
}

// Crash makes the actor that receives it panic with Reason; it carries an
// injected fault to a singleton actor.
type Crash struct {
	Reason string
}
