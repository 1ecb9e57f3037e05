package probe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc3162"

	"github.com/lbhealth/hcsupervisor/messages"
)

// radiusIDs numbers Access-Requests. It is seeded at random so that two
// processes, or a restarted one, do not start from the same identifier,
// and it is safe for concurrent use (Seesaw shared a math/rand source
// between goroutines).
var radiusIDs atomic.Uint32

func init() {
	var seed [4]byte
	_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails on Linux.
	radiusIDs.Store(binary.BigEndian.Uint32(seed[:]))
}

// radiusCodes maps the response a config expects to the reply code that
// satisfies it; RADIUSAny is satisfied by any authentic reply.
var radiusCodes = map[string]radius.Code{
	messages.RADIUSAccept:    radius.CodeAccessAccept,
	messages.RADIUSReject:    radius.CodeAccessReject,
	messages.RADIUSChallenge: radius.CodeAccessChallenge,
}

// radiusProber sends one RADIUS Access-Request to a backend and checks the
// reply's authenticator and code. It is immutable after newRADIUS and so
// safe for concurrent use.
type radiusProber struct {
	timeout  time.Duration
	target   string
	prefix   string
	dialer   net.Dialer
	nasID    string // NAS-Identifier: this host's name
	username string
	password string
	secret   []byte
	response string // a messages.RADIUS* value
}

// newRADIUS builds the prober for a RADIUS config.
func newRADIUS(cfg *messages.Config) *radiusProber {
	host, err := os.Hostname()
	if err != nil {
		host = "hcsupervisor"
	}
	return &radiusProber{
		timeout:  cfg.Timeout,
		target:   cfg.Target(),
		prefix:   "RADIUS Access-Request to " + cfg.Target(),
		dialer:   newDialer(cfg.Mark, false),
		nasID:    host,
		username: cfg.Username,
		password: cfg.Password,
		secret:   []byte(cfg.Secret),
		response: cfg.Response,
	}
}

// Probe sends the Access-Request and evaluates the first reply.
func (p *radiusProber) Probe(ctx context.Context) messages.ProbeResult {
	ctx, cancel := bound(ctx, p.timeout)
	defer cancel()

	conn, err := p.dialer.DialContext(ctx, "udp", p.target)
	if err != nil {
		return p.fail(ctx, "connect", err)
	}
	defer conn.Close()
	stop := bindConn(ctx, conn)
	defer stop()

	req, err := p.request(conn.LocalAddr())
	if err != nil {
		return failed(fmt.Sprintf("%s; encoding request: %v", p.prefix, err))
	}
	if _, err := conn.Write(req); err != nil {
		return p.fail(ctx, "write", err)
	}
	buf := make([]byte, radius.MaxPacketLength)
	n, err := conn.Read(buf)
	if err != nil {
		return p.fail(ctx, "read", err)
	}
	return p.evaluate(req, buf[:n])
}

// request returns an encoded Access-Request from local, the address of
// the probe's socket, which becomes the NAS-IP-Address (or, over IPv6, the
// NAS-IPv6-Address).
func (p *radiusProber) request(local net.Addr) ([]byte, error) {
	// New draws a random Request Authenticator from crypto/rand.
	pkt := radius.New(radius.CodeAccessRequest, p.secret)
	pkt.Identifier = byte(radiusIDs.Add(1))

	steps := []func() error{
		func() error { return rfc2865.NASIdentifier_SetString(pkt, p.nasID) },
		func() error { return rfc2865.UserName_SetString(pkt, p.username) },
		// Hidden with the secret and the Request Authenticator, as
		// RFC 2865 section 5.2 says.
		func() error { return rfc2865.UserPassword_SetString(pkt, p.password) },
		func() error {
			return rfc2865.NASPortType_Set(pkt, rfc2865.NASPortType_Value_Virtual)
		},
		func() error {
			return rfc2865.ServiceType_Set(pkt, rfc2865.ServiceType_Value_LoginUser)
		},
		func() error { return setNASAddress(pkt, local) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return pkt.Encode()
}

// setNASAddress adds the NAS-IP-Address, or NAS-IPv6-Address, of local.
func setNASAddress(pkt *radius.Packet, local net.Addr) error {
	ua, ok := local.(*net.UDPAddr)
	if !ok {
		return fmt.Errorf("local address %v is not a UDP address", local)
	}
	if ip4 := ua.IP.To4(); ip4 != nil {
		return rfc2865.NASIPAddress_Set(pkt, ip4)
	}
	return rfc3162.NASIPv6Address_Set(pkt, ua.IP)
}

// evaluate checks that b is an authentic reply to req with the expected
// code.
func (p *radiusProber) evaluate(req, b []byte) messages.ProbeResult {
	resp, err := radius.Parse(b, p.secret)
	switch {
	case err != nil:
		return failed(fmt.Sprintf("%s; invalid reply: %v", p.prefix, err))
	case resp.Identifier != req[1]:
		return failed(fmt.Sprintf("%s; reply identifier %d, want %d",
			p.prefix, resp.Identifier, req[1]))
	case !radius.IsAuthenticResponse(b, req, p.secret):
		return failed(p.prefix +
			"; response authenticator mismatch (incorrect secret?)")
	}

	msg := fmt.Sprintf("%s; got %s", p.prefix, resp.Code)
	want, ok := radiusCodes[p.response]
	if ok && resp.Code != want {
		return failed(fmt.Sprintf("%s; want %s", msg, want))
	}
	if !ok && !isRADIUSReply(resp.Code) {
		return failed(msg + "; want an Access-Accept, -Reject or -Challenge")
	}
	return succeeded(msg)
}

// isRADIUSReply reports whether code answers an Access-Request.
func isRADIUSReply(code radius.Code) bool {
	switch code {
	case radius.CodeAccessAccept, radius.CodeAccessReject,
		radius.CodeAccessChallenge:
		return true
	}
	return false
}

// fail returns the failed result for err in the step named step.
func (p *radiusProber) fail(
	ctx context.Context, step string, err error,
) messages.ProbeResult {
	return failed(p.prefix + "; " + stepFailed(ctx, step, err))
}
