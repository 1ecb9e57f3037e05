package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// maxDatagram is the largest UDP payload a probe reads.
const maxDatagram = 65535

// udpProber sends one datagram to a backend and waits for one in reply.
// It is immutable after newUDP and so safe for concurrent use.
type udpProber struct {
	timeout time.Duration
	target  string
	prefix  string
	dialer  net.Dialer
	send    []byte
	receive string
}

// newUDP builds the prober for a UDP config.
func newUDP(cfg *messages.Config) *udpProber {
	return &udpProber{
		timeout: cfg.Timeout,
		target:  cfg.Target(),
		prefix:  "UDP check to " + cfg.Target(),
		dialer:  newDialer(cfg.Mark, false),
		send:    []byte(cfg.Send),
		receive: cfg.Receive,
	}
}

// Probe sends Send (an empty datagram if it is empty) and waits for one
// reply, which must start with Receive. As in Seesaw, a reply is required
// even when Receive is empty, and nothing is retransmitted. An ICMP port
// unreachable in answer fails the probe, saying so.
func (p *udpProber) Probe(ctx context.Context) messages.ProbeResult {
	ctx, cancel := bound(ctx, p.timeout)
	defer cancel()

	conn, err := p.dialer.DialContext(ctx, "udp", p.target)
	if err != nil {
		return p.fail(ctx, "connect", err)
	}
	defer conn.Close()
	stop := bindConn(ctx, conn)
	defer stop()

	if _, err := conn.Write(p.send); err != nil {
		return p.fail(ctx, "write", err)
	}
	buf := make([]byte, maxDatagram)
	n, err := conn.Read(buf)
	if err != nil {
		return p.fail(ctx, "read", err)
	}
	if got := buf[:n]; !strings.HasPrefix(string(got), p.receive) {
		return failed(fmt.Sprintf("%s; unexpected response - %q",
			p.prefix, truncate(got, len(p.receive))))
	}
	return succeeded(p.prefix)
}

// fail returns the failed result for err in the step named step. On a
// connected UDP socket, ECONNREFUSED is the kernel's report of an ICMP
// port unreachable from the target, and the message names it so.
func (p *udpProber) fail(
	ctx context.Context, step string, err error,
) messages.ProbeResult {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return failed(fmt.Sprintf("%s; %s failed: %s",
			p.prefix, step, portUnreachable))
	}
	return failed(p.prefix + "; " + stepFailed(ctx, step, err))
}

// portUnreachable is how a UDP probe's message names an ICMP port
// unreachable.
const portUnreachable = "ICMP port unreachable (connection refused)"

// truncate returns the first n bytes of b, or at least 16 of them, for a
// message: enough to see why a prefix did not match.
func truncate(b []byte, n int) []byte {
	n = max(n, 16)
	if len(b) > n {
		return b[:n]
	}
	return b
}
