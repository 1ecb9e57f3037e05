package bridge

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envFutureEngine); path != "" {
		if err := runFutureEngine(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// NOTE: the actor library throttles dead-letter logging with a
	// goroutine that lives one throttle period (1s) after a dead letter and
	// may be logging when checked, hence any function on its stack. It
	// ends by itself and is owned by the library.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction(
		"github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}
