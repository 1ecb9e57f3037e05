package tests

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// ignoreThrottle ignores the actor library's dead-letter throttle: the
// first dead letter it logs in each interval starts a goroutine that
// sleeps for the throttle interval (1s) and then ends, with no way to stop
// it, and outlives ActorSystem.Shutdown. A stop used to log one such dead
// letter every time (the root's Terminated reaching the stopped notifier,
// fixed by the notifier unwatching its sink); a message racing a stop
// still can. The two names are the function inlined into NewDeadLetter and
// not inlined.
var ignoreThrottle = []goleak.Option{
	goleak.IgnoreAnyFunction(
		"github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	goleak.IgnoreAnyFunction(
		"github.com/asynkron/protoactor-go/actor.NewThrottle.func1.1"),
}

// TestMain fails the package if any goroutine outlives its tests.
func TestMain(m *testing.M) {
	// Millisecond timestamps make the logs of a failed test readable.
	zerolog.TimeFieldFormat = "15:04:05.000"
	goleak.VerifyTestMain(settled{m}, ignoreThrottle...)
}

// settled runs the tests and then gives goroutines that are already
// ending (an HTTP transport's connection loops, say) time to return
// before goleak looks, as goleak's own retries are short for a loaded
// machine.
type settled struct{ m *testing.M }

func (s settled) Run() int {
	code := s.m.Run()
	if code == 0 {
		settle(ignoreThrottle...)
	}
	return code
}

// settle waits until goleak finds no goroutine beyond opts, or until
// waitTimeout passes; the caller then checks with goleak.
func settle(opts ...goleak.Option) {
	deadline := time.Now().Add(waitTimeout)
	for goleak.Find(opts...) != nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStartStopNoLeaks starts and stops a server five times with checks
// running, a probe in flight and clients connected, and checks that no
// goroutine is left behind.
func TestStartStopNoLeaks(t *testing.T) {
	opts := append([]goleak.Option{goleak.IgnoreCurrent()}, ignoreThrottle...)
	for round := range 5 {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			srv := startServer(t, serverOptions{NotifyInterval: 200 * time.Millisecond})
			up := startTCP(t, false)
			silent := startTCP(t, true)
			web := startHTTP(t, 200)
			answer := netip.MustParseAddr("127.0.0.10")
			dnsAddr := startDNS(t, map[string]netip.Addr{"leak.example.test.": answer})

			// A probe that hangs until the stop cancels it.
			hanging := silentConfig(5, silent.addr)
			hanging.Interval = checkInterval

			a := dial(t, srv.path)
			b := dial(t, srv.path)
			a.update(
				tcpConfig(1, up.addr),
				httpConfig(2, web.addr, ""),
				dnsConfig(3, dnsAddr, "leak.example.test", answer),
				tcpConfig(4, refusedAddr(t)),
				hanging,
			)
			for _, c := range []*client{a, b} {
				c.waitFirstNotes(0, 1, 2, 3, 4)
			}
			eventually(t, waitTimeout, "the hanging probe to connect", func() bool {
				return silent.accepted.Load() > 0
			})

			srv.stop(t)
			a.waitEOF(waitTimeout)
			b.waitEOF(waitTimeout)
		})
	}
	settle(opts...)
	goleak.VerifyNone(t, opts...)
}
