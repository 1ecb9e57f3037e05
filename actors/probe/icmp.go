package probe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/lbhealth/hcsupervisor/messages"
)

// IANA protocol numbers, as icmp.ParseMessage wants them.
const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// echoPayload fills every echo request: 56 bytes, so that the ICMP
// message is 64 bytes long, as Seesaw's is.
var echoPayload = []byte("hcsupervisor health check echo request 0123456789abcdefg")

// icmpIDs numbers the echo requests of raw sockets, seeded at random so
// that two processes do not pick the same identifiers. It is safe for
// concurrent use.
var icmpIDs atomic.Uint32

func init() {
	var seed [4]byte
	_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails on Linux.
	icmpIDs.Store(binary.BigEndian.Uint32(seed[:]))
}

// icmpProber sends one ICMP or ICMPv6 echo request to a backend and waits
// for the matching echo reply. Its only mutable state is the sequence
// counter, which is atomic, so it is safe for concurrent use.
type icmpProber struct {
	timeout time.Duration
	ip      netip.Addr
	prefix  string
	seq     atomic.Uint32 // sequence numbers, kept across probes
}

// newICMP builds the prober for an ICMP config.
func newICMP(cfg *messages.Config) *icmpProber {
	ip := cfg.IP.Unmap()
	return &icmpProber{
		timeout: cfg.Timeout,
		ip:      ip,
		prefix:  "ICMP ping to host " + ip.String(),
	}
}

// echoSocket is an ICMP socket open for one probe.
type echoSocket struct {
	conn *icmp.PacketConn
	// raw is true for a raw socket, which sees every echo reply on the
	// host and keeps the identifier; false for a ping socket, whose
	// identifier the kernel sets to its own port and matches itself.
	raw bool
}

// Probe sends the echo request and waits for its reply.
func (p *icmpProber) Probe(ctx context.Context) messages.ProbeResult {
	ctx, cancel := bound(ctx, p.timeout)
	defer cancel()

	sock, err := openEcho(p.ip.Is6())
	if err != nil {
		return failed(p.prefix + "; " + err.Error())
	}
	defer sock.conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = sock.conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = sock.conn.SetDeadline(expired) })
	defer stop()

	id := uint16(icmpIDs.Add(1))
	seq := uint16(p.seq.Add(1))
	if err := p.send(sock, id, seq); err != nil {
		return failed(p.prefix + "; " + stepFailed(ctx, "write", err))
	}
	if err := p.await(sock, id, seq); err != nil {
		return failed(p.prefix + "; " + stepFailed(ctx, "read", err))
	}
	return succeeded(p.prefix)
}

// openEcho opens an unprivileged ping socket, or else a raw socket, for
// IPv6 if v6. Without either it returns an error wrapping
// ErrNoICMPSocket with both reasons.
func openEcho(v6 bool) (*echoSocket, error) {
	dgram, raw, wildcard := "udp4", "ip4:icmp", "0.0.0.0"
	if v6 {
		dgram, raw, wildcard = "udp6", "ip6:ipv6-icmp", "::"
	}
	conn, dgramErr := icmp.ListenPacket(dgram, wildcard)
	if dgramErr == nil {
		return &echoSocket{conn: conn}, nil
	}
	conn, rawErr := icmp.ListenPacket(raw, wildcard)
	if rawErr != nil {
		return nil, fmt.Errorf("%w: ping socket: %v; raw socket: %v",
			ErrNoICMPSocket, dgramErr, rawErr)
	}
	filterEchoReplies(conn, v6)
	return &echoSocket{conn: conn, raw: true}, nil
}

// filterEchoReplies asks the kernel to pass only echo replies to a raw
// socket, which would otherwise see every ICMP message on the host. It is
// an optimisation: await filters anyway, so an error is ignored.
func filterEchoReplies(conn *icmp.PacketConn, v6 bool) {
	if v6 {
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		_ = conn.IPv6PacketConn().SetICMPFilter(&f)
		return
	}
	var f ipv4.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv4.ICMPTypeEchoReply)
	_ = conn.IPv4PacketConn().SetICMPFilter(&f)
}

// send writes the echo request id, seq to the prober's IP.
func (p *icmpProber) send(sock *echoSocket, id, seq uint16) error {
	msg := icmp.Message{
		Type: icmp.Type(ipv4.ICMPTypeEcho),
		Body: &icmp.Echo{ID: int(id), Seq: int(seq), Data: echoPayload},
	}
	if p.ip.Is6() {
		// The kernel computes the ICMPv6 checksum, which covers the
		// IPv6 pseudo-header.
		msg.Type = ipv6.ICMPTypeEchoRequest
	}
	b, err := msg.Marshal(nil)
	if err != nil {
		return err
	}
	var dst net.Addr = &net.UDPAddr{IP: p.ip.AsSlice()}
	if sock.raw {
		dst = &net.IPAddr{IP: p.ip.AsSlice()}
	}
	_, err = sock.conn.WriteTo(b, dst)
	return err
}

// await reads until the echo reply to id, seq from the prober's IP
// arrives, or the socket's deadline passes.
func (p *icmpProber) await(sock *echoSocket, id, seq uint16) error {
	buf := make([]byte, 1500)
	for {
		n, peer, err := sock.conn.ReadFrom(buf)
		if err != nil {
			return err
		}
		if p.isReply(buf[:n], peer, sock.raw, id, seq) {
			return nil
		}
	}
}

// isReply reports whether the packet b from peer is the echo reply to
// id, seq. A ping socket's replies carry the kernel's identifier, so only
// a raw socket's are matched on id.
func (p *icmpProber) isReply(
	b []byte, peer net.Addr, raw bool, id, seq uint16,
) bool {
	if peerAddr(peer) != p.ip {
		return false
	}
	proto, want := protoICMP, icmp.Type(ipv4.ICMPTypeEchoReply)
	if p.ip.Is6() {
		proto, want = protoICMPv6, ipv6.ICMPTypeEchoReply
	} else if raw && !validChecksum(b) {
		// A ping socket's kernel checks the checksum; over IPv6 the
		// kernel checks it for raw sockets too.
		return false
	}
	m, err := icmp.ParseMessage(proto, b)
	if err != nil || m.Type != want {
		return false
	}
	echo, ok := m.Body.(*icmp.Echo)
	return ok && uint16(echo.Seq) == seq && (!raw || uint16(echo.ID) == id)
}

// peerAddr returns the unmapped IP of a packet's source address.
func peerAddr(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// validChecksum reports whether b, an ICMPv4 message, sums to zero in
// ones' complement, as RFC 792 requires.
func validChecksum(b []byte) bool {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return sum == 0xffff
}
