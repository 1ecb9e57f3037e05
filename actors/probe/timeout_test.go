package probe

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lbhealth/hcsupervisor/messages"
)

// TestThousandTimeouts runs 1,000 probes at once against loopback servers
// that never answer: TCP probes that send and wait for a reply from a
// server that accepts and stays silent, and a few UDP probes to a socket
// that reads and stays silent. Each must fail, saying it timed out, no
// later than lateness after its Timeout, and once all have returned the
// goroutine count must come back to what it was before they started: no
// probe leaves a goroutine behind, nor a connection that keeps a server
// goroutine alive.
func TestThousandTimeouts(t *testing.T) {
	const (
		probes = 1000
		// Every udpEvery-th probe is a UDP one.
		udpEvery = 50
		timeout  = 500 * time.Millisecond
	)
	checkNoLeaks(t)
	// Let goroutines of earlier tests end, so that none of them ending
	// during this test can hide one of ours; goleak.Find retries until
	// there are none or it gives up.
	_ = goleak.Find()

	silentTCP := serveTCP(t, listenTCP(t, "tcp4", "127.0.0.1:0"), drain)
	silentUDP := serveUDP(t, "udp4", "127.0.0.1:0",
		func([]byte) []byte { return nil })
	short := func(c *messages.Config) {
		c.Send, c.Receive, c.Timeout = "PING\r\n", "+PONG", timeout
	}
	tcpCfg := testConfig(t, messages.CheckerTCP, silentTCP.addr, short)
	udpCfg := testConfig(t, messages.CheckerUDP, silentUDP, short)
	tcpProber, udpProber := mustNew(t, &tcpCfg), mustNew(t, &udpCfg)

	baseline := runtime.NumGoroutine()
	type outcome struct {
		result  messages.ProbeResult
		elapsed time.Duration
	}
	outcomes := make([]outcome, probes)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range probes {
		p := tcpProber
		if i%udpEvery == 0 {
			p = udpProber
		}
		wg.Go(func() {
			<-start
			began := time.Now()
			// As the check actor does: no deadline but the config's.
			res := p.Probe(context.Background())
			outcomes[i] = outcome{res, time.Since(began)}
		})
	}
	close(start)
	wg.Wait()

	var slowest time.Duration
	for i, o := range outcomes {
		slowest = max(slowest, o.elapsed)
		if o.result.Success || !strings.Contains(o.result.Message, "timed out") {
			t.Errorf("probe %d: got success %v, %q; want a timeout",
				i, o.result.Success, o.result.Message)
		}
		if o.elapsed > timeout+lateness {
			t.Errorf("probe %d took %v, want at most %v",
				i, o.elapsed, timeout+lateness)
		}
	}
	t.Logf("%d probes timed out; the slowest returned after %v", probes, slowest)

	// Every probe closed its connection, so the silent server's handlers
	// end too, and the count returns to its baseline.
	waitGoroutines(t, func() bool { return runtime.NumGoroutine() <= baseline })
	if n := runtime.NumGoroutine(); n > baseline {
		t.Errorf("%d goroutines after the probes, want at most %d as before:\n%s",
			n, baseline, goroutineStacks())
	}
	if n := silentTCP.active(); n != 0 {
		t.Errorf("silent server still has %d connections open", n)
	}
}

// waitGoroutines polls cond, as goleak does, until it holds or 10s pass.
func waitGoroutines(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Microsecond; !cond() && time.Now().Before(deadline); {
		time.Sleep(delay)
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// goroutineStacks returns every goroutine's stack, for a failure message.
func goroutineStacks() []byte {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.TrimSpace(buf)
}
