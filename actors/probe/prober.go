// Package probe runs one health probe of a backend: TCP, HTTP, DNS, ICMP
// echo, UDP or RADIUS.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// Prober runs one configured probe. Probe must honour ctx: its deadline
// bounds every dial, TLS handshake, read and write (deadlines are set on the
// connection itself from ctx.Deadline(), and cancelling ctx aborts the probe
// promptly), so no goroutine or file descriptor outlives the call. Probe
// returns a result with Success and Message filled in; the caller fills Start
// and Duration. A failing backend is a result with Success false and a
// message saying why, never a panic. A Prober is safe for concurrent use but
// the caller runs one probe at a time per check.
//
// Every Prober of this package also bounds a probe by the config's Timeout
// when ctx has no earlier deadline.
type Prober interface {
	Probe(ctx context.Context) messages.ProbeResult
}

// Options are what a prober's owner chooses for every check alike. The
// zero value is Seesaw's behaviour.
type Options struct {
	// ResetClose closes every TCP connection of a probe (tcp, http, and
	// dns over TCP) with a reset (SO_LINGER 0) instead of the FIN
	// handshake, as HAProxy closes its health checks. Closing first, the
	// prober would otherwise keep each connection in TIME_WAIT for 60s:
	// 600,000 sockets at 10,000 probes a second, beyond the kernel's
	// tcp_max_tw_buckets, and a drain on local ports towards any one
	// backend. The cost: a backend sees a reset rather than a close, and
	// bytes a probe sent but the kernel had not yet transmitted are
	// dropped.
	ResetClose bool
}

// New returns the Prober for cfg with the zero Options; see Options.New.
func New(cfg *messages.Config) (Prober, error) {
	return Options{}.New(cfg)
}

// New returns the Prober for cfg, which must already be defaulted and
// validated by messages.ParseConfig or Config.Validate. New builds the
// connection machinery once, so each probe only dials and talks. It returns
// an error, wrapping ErrUnsupported, only when cfg's checker type is unknown
// to this package. New does not retain cfg.
func (o Options) New(cfg *messages.Config) (Prober, error) {
	switch cfg.Checker {
	case messages.CheckerTCP:
		return newTCP(cfg, o), nil
	case messages.CheckerHTTP:
		return newHTTP(cfg, o), nil
	case messages.CheckerDNS:
		return newDNS(cfg, o), nil
	case messages.CheckerUDP:
		return newUDP(cfg), nil
	case messages.CheckerRADIUS:
		return newRADIUS(cfg), nil
	case messages.CheckerICMP:
		return newICMP(cfg), nil
	}
	return nil, fmt.Errorf("new prober for %q: %w", cfg.Checker, ErrUnsupported)
}

// brokenProber fails every probe with the same message. New returns it for
// a config that passed validation yet cannot be turned into a probe, so the
// check reports why instead of the process failing.
type brokenProber struct {
	message string
}

// Probe reports the failure the prober was built with.
func (b *brokenProber) Probe(context.Context) messages.ProbeResult {
	return failed(b.message)
}

// bound returns ctx bounded by timeout from now. When ctx already ends
// by then, as the check actor's context does, it returns ctx itself: a
// second timer per probe would cost more than the bound is worth.
func bound(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && !d.After(time.Now().Add(timeout)) {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, timeout)
}

// expired is a deadline in the past: setting it aborts blocked I/O at once.
var expired = time.Unix(1, 0)

// bindConn makes ctx govern conn: the connection's deadline becomes ctx's
// deadline, and ctx being done expires that deadline at once, so a blocked
// read, write or TLS handshake returns. Calling the returned stop releases
// ctx's hold on conn.
func bindConn(ctx context.Context, conn net.Conn) (stop func() bool) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	return context.AfterFunc(ctx, func() {
		_ = conn.SetDeadline(expired)
	})
}

// succeeded returns a successful result with message msg.
func succeeded(msg string) messages.ProbeResult {
	return messages.ProbeResult{Success: true, Message: msg}
}

// failed returns a failed result with message msg.
func failed(msg string) messages.ProbeResult {
	return messages.ProbeResult{Message: msg}
}

// stepFailed describes the error err of the probe step named step, e.g.
// "read timed out: read tcp ...: i/o timeout". A cancelled ctx or an expired
// deadline is named as such, since the error text alone often says only
// "i/o timeout" for both.
func stepFailed(ctx context.Context, step string, err error) string {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Sprintf("%s canceled: %v", step, err)
	case isTimeout(err) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("%s timed out: %v", step, err)
	}
	return fmt.Sprintf("%s failed: %v", step, err)
}

// isTimeout reports whether err comes from a deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout()
}
