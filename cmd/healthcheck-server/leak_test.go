package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives its tests.
func TestMain(m *testing.M) {
	// NOTE: the actor library throttles dead-letter logging with a
	// goroutine that lives one throttle period (1s) after a dead letter and
	// may be logging when checked, hence any function on its stack. It
	// ends by itself and is owned by the library. The two names are the
	// function inlined into NewDeadLetter and not inlined.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction(
			"github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreAnyFunction(
			"github.com/asynkron/protoactor-go/actor.NewThrottle.func1.1"),
	)
}
