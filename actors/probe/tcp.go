package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// tcpProber connects to a backend over TCP, optionally wrapped in TLS,
// optionally sends a request and optionally checks the start of the reply.
// It is immutable after newTCP and so safe for concurrent use.
type tcpProber struct {
	timeout time.Duration
	target  string
	prefix  string
	dialer  net.Dialer
	tls     *tls.Config // nil for plain TCP
	send    string
	receive string
}

// newTCP builds the prober for a TCP config.
func newTCP(cfg *messages.Config, o Options) *tcpProber {
	p := &tcpProber{
		timeout: cfg.Timeout,
		target:  cfg.Target(),
		prefix:  "TCP connect to " + cfg.Target(),
		dialer:  newDialer(cfg.Mark, o.ResetClose),
		send:    cfg.Send,
		receive: cfg.Receive,
	}
	if cfg.Secure {
		// Without Host the server name is the IP literal, as in Seesaw:
		// no SNI is sent and verification checks the IP SANs.
		p.tls = &tls.Config{
			InsecureSkipVerify: !cfg.TLSVerify,
			ServerName:         tlsServerName(cfg),
		}
	}
	return p
}

// Probe connects, completes the TLS handshake if configured, and exchanges
// Send and Receive if either is set.
func (p *tcpProber) Probe(ctx context.Context) messages.ProbeResult {
	ctx, cancel := bound(ctx, p.timeout)
	defer cancel()

	raw, err := p.dialer.DialContext(ctx, "tcp", p.target)
	if err != nil {
		return p.fail(ctx, "connect", err)
	}
	defer raw.Close()
	stop := bindConn(ctx, raw)
	defer stop()

	var conn io.ReadWriter = raw
	if p.tls != nil {
		tc := tls.Client(raw, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return p.fail(ctx, "TLS handshake", err)
		}
		conn = tc
	}

	if p.send == "" && p.receive == "" {
		return succeeded(p.prefix)
	}
	return p.exchange(ctx, conn)
}

// exchange writes Send, then reads len(Receive) bytes and requires them to
// equal Receive: the reply must start with Receive.
func (p *tcpProber) exchange(
	ctx context.Context, conn io.ReadWriter,
) messages.ProbeResult {
	if p.send != "" {
		if _, err := io.WriteString(conn, p.send); err != nil {
			return p.fail(ctx, "write", err)
		}
	}
	if p.receive == "" {
		return succeeded(p.prefix)
	}

	got := make([]byte, len(p.receive))
	if _, err := io.ReadFull(conn, got); err != nil {
		return p.fail(ctx, "read", err)
	}
	if string(got) != p.receive {
		return failed(fmt.Sprintf(
			"%s; unexpected response - %q", p.prefix, got))
	}
	return succeeded(p.prefix)
}

// fail returns the failed result for err in the step named step.
func (p *tcpProber) fail(
	ctx context.Context, step string, err error,
) messages.ProbeResult {
	return failed(p.prefix + "; " + stepFailed(ctx, step, err))
}
