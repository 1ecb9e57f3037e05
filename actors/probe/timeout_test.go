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
// that never answer: mostly TCP probes that send and wait for a reply from
// a server that accepts and stays silent, and a few each of UDP, HTTP, DNS
// and RADIUS probes to silent servers. Each must fail, saying it timed
// out, no later than lateness after its Timeout, and once all have
// returned the goroutine count must come back to what it was before they
// started: no probe leaves a goroutine behind, nor a connection that keeps
// a server goroutine alive.
func TestThousandTimeouts(t *testing.T) {
	const (
		probes = 1000
		// Of every group of probes, all but the first few are TCP.
		group   = 50
		timeout = 500 * time.Millisecond
	)
	checkNoLeaks(t)
	// Let goroutines of earlier tests end, so that none of them ending
	// during this test can hide one of ours; goleak.Find retries until
	// there are none or it gives up.
	_ = goleak.Find()

	silentTCP := serveTCP(t, listenTCP(t, "tcp4", "127.0.0.1:0"), drain)
	silentHTTP := serveTCP(t, listenTCP(t, "tcp4", "127.0.0.1:0"), drain)
	silentUDP := serveUDP(t, "udp4", "127.0.0.1:0",
		func([]byte) []byte { return nil })
	short := func(edit func(*messages.Config)) func(*messages.Config) {
		return func(c *messages.Config) {
			c.Timeout = timeout
			if edit != nil {
				edit(c)
			}
		}
	}
	sendReceive := short(func(c *messages.Config) {
		c.Send, c.Receive = "PING\r\n", "+PONG"
	})
	cfgs := []messages.Config{
		testConfig(t, messages.CheckerUDP, silentUDP, sendReceive),
		testConfig(t, messages.CheckerHTTP, silentHTTP.addr, short(nil)),
		testConfig(t, messages.CheckerDNS, silentUDP, short(nil)),
		testConfig(t, messages.CheckerRADIUS, silentUDP, short(nil)),
		// The rest of each group.
		testConfig(t, messages.CheckerTCP, silentTCP.addr, sendReceive),
	}
	probers := make([]Prober, len(cfgs))
	for i := range cfgs {
		probers[i] = mustNew(t, &cfgs[i])
	}
	proberOf := func(i int) Prober {
		return probers[min(i%group, len(probers)-1)]
	}

	baseline := runtime.NumGoroutine()
	type outcome struct {
		result  messages.ProbeResult
		elapsed time.Duration
	}
	outcomes := make([]outcome, probes)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range probes {
		p := proberOf(i)
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

	// The first len(probers) probes are one of each kind: a sample of
	// the messages. Only the first few failures are listed.
	var slowest time.Duration
	var bad int
	for i, o := range outcomes {
		if i < len(probers) {
			t.Logf("%s: %s", cfgs[i].Checker, o.result.Message)
		}
		slowest = max(slowest, o.elapsed)
		timedOut := !o.result.Success &&
			strings.Contains(o.result.Message, "timed out")
		if timedOut && o.elapsed <= timeout+lateness {
			continue
		}
		if bad++; bad <= 5 {
			t.Errorf("probe %d: success %v, %q after %v; "+
				"want a timeout within %v", i, o.result.Success,
				o.result.Message, o.elapsed, timeout+lateness)
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d probes did not time out in time", bad, probes)
	}
	t.Logf("%d probes timed out; the slowest returned after %v", probes, slowest)

	// Every probe closed its connection, so the silent server's handlers
	// end too, and the count returns to its baseline.
	waitGoroutines(func() bool { return runtime.NumGoroutine() <= baseline })
	if n := runtime.NumGoroutine(); n > baseline {
		t.Errorf("%d goroutines after the probes, want at most %d as before:\n%s",
			n, baseline, goroutineStacks())
	}
	for _, srv := range []*tcpServer{silentTCP, silentHTTP} {
		if n := srv.active(); n != 0 {
			t.Errorf("silent server still has %d connections open", n)
		}
	}
}

// waitGoroutines polls cond, backing off as goleak does, until it holds
// or 10s pass.
func waitGoroutines(cond func() bool) {
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
