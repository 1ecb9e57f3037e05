package probe

import (
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/lbhealth/hcsupervisor/messages"
)

// serveUDP answers each datagram on a loopback UDP socket with
// answer(datagram), or not at all when answer returns nil. Cleanup closes
// the socket and waits for the server's goroutine.
func serveUDP(
	t *testing.T, network, address string, answer func([]byte) []byte,
) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket(network, address)
	if err != nil && network == "udp6" {
		t.Skipf("cannot listen on %s: %v", address, err)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", address, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := answer(buf[:n]); out != nil {
				_, _ = pc.WriteTo(out, from)
			}
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return addrPort(t, pc.LocalAddr())
}

// closedUDPPort returns a loopback UDP port nothing listens on.
func closedUDPPort(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ap := addrPort(t, pc.LocalAddr())
	pc.Close()
	return ap
}

// udpPong answers "ping" with "pong!" and anything else with "what?".
func udpPong(b []byte) []byte {
	if string(b) == "ping" {
		return []byte("pong!")
	}
	return []byte("what?")
}

func TestUDP(t *testing.T) {
	ap := serveUDP(t, "udp4", "127.0.0.1:0", udpPong)
	tests := []struct {
		name        string
		send        string
		receive     string
		wantSuccess bool
		wantMsg     string
	}{
		{"reply starts with receive", "ping", "pong", true,
			"UDP check to " + ap.String()},
		{"whole reply", "ping", "pong!", true, ""},
		{"any reply", "ping", "", true, ""},
		{"empty datagram", "", "what", true, ""},
		{"wrong reply", "pong", "pong", false, `; unexpected response - "what?"`},
		{"reply shorter than receive", "ping", "pong!!", false,
			`; unexpected response - "pong!"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, messages.CheckerUDP, ap, func(c *messages.Config) {
				c.Send, c.Receive = tc.send, tc.receive
			})
			checkResult(t, runProbe(t, cfg, probeTimeout), tc.wantSuccess, tc.wantMsg)
		})
	}
}

func TestUDPIPv6(t *testing.T) {
	ap := serveUDP(t, "udp6", "[::1]:0", udpPong)
	cfg := testConfig(t, messages.CheckerUDP, ap, func(c *messages.Config) {
		c.Send, c.Receive = "ping", "pong"
	})
	checkResult(t, runProbe(t, cfg, probeTimeout), true, "UDP check to [::1]:")
}

// TestUDPRefused probes a loopback port nothing listens on: the kernel
// answers with an ICMP port unreachable, which the message must name.
func TestUDPRefused(t *testing.T) {
	checkNoLeaks(t)
	ap := closedUDPPort(t)
	cfg := testConfig(t, messages.CheckerUDP, ap, func(c *messages.Config) {
		c.Send = "ping"
	})
	want := "UDP check to " + ap.String() +
		"; read failed: ICMP port unreachable (connection refused)"
	got := runProbe(t, cfg, probeTimeout)
	if got.Success || got.Message != want {
		t.Errorf("Probe() = %v, %q; want false, %q",
			got.Success, got.Message, want)
	}
}

func TestUDPSilentServer(t *testing.T) {
	checkNoLeaks(t)
	ap := serveUDP(t, "udp4", "127.0.0.1:0", func([]byte) []byte { return nil })
	cfg := testConfig(t, messages.CheckerUDP, ap, func(c *messages.Config) {
		c.Send = "ping"
	})
	probeSilent(t, cfg, "; read timed out: ")
}

func TestUDPCancel(t *testing.T) {
	checkNoLeaks(t)
	got := make(chan struct{}, 1)
	ap := serveUDP(t, "udp4", "127.0.0.1:0", func([]byte) []byte {
		select {
		case got <- struct{}{}:
		default:
		}
		return nil
	})
	cfg := testConfig(t, messages.CheckerUDP, ap, nil)
	probeCancelled(t, cfg, got)
}
