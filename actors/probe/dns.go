package probe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/lbhealth/hcsupervisor/messages"
)

// dnsProber asks a backend one A or AAAA question and checks the answer.
// It is immutable after newDNS and so safe for concurrent use.
type dnsProber struct {
	timeout time.Duration
	target  string
	prefix  string
	query   *dns.Msg // template; each probe sends a copy with a fresh ID
	want    []netip.Addr
	dialer  net.Dialer
	client  *dns.Client
}

// newDNS builds the prober for a DNS config, or a brokenProber if its query
// type is unknown.
func newDNS(cfg *messages.Config) Prober {
	name := dns.Fqdn(cfg.Query)
	prefix := fmt.Sprintf("DNS %s IN %s query to %s",
		name, cfg.QueryType, cfg.Target())
	qtype, ok := dns.StringToType[cfg.QueryType]
	if !ok || (qtype != dns.TypeA && qtype != dns.TypeAAAA) {
		return &brokenProber{message: prefix + "; unsupported query type"}
	}

	want := make([]netip.Addr, len(cfg.ExpectedIPs))
	for i, ip := range cfg.ExpectedIPs {
		want[i] = ip.Unmap()
	}
	return &dnsProber{
		timeout: cfg.Timeout,
		target:  cfg.Target(),
		prefix:  prefix,
		query:   new(dns.Msg).SetQuestion(name, qtype),
		want:    want,
		// The client's Timeout only backs up the context's deadline, which
		// wins when earlier; UDPSize only sizes the receive buffer.
		client: &dns.Client{Timeout: cfg.Timeout, UDPSize: dns.DefaultMsgSize},
	}
}

// Probe asks the question over UDP, again over TCP if the reply was
// truncated, and evaluates the reply.
func (p *dnsProber) Probe(ctx context.Context) messages.ProbeResult {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	step := "query"
	r, err := p.exchange(ctx, "udp")
	if err == nil && r.Truncated {
		step = "query over TCP"
		r, err = p.exchange(ctx, "tcp")
	}
	if err != nil {
		return failed(p.prefix + "; " + stepFailed(ctx, step, err))
	}

	ok, detail := evaluateDNS(p.query.Question[0], p.want, r)
	if !ok {
		return failed(p.prefix + "; " + detail)
	}
	return succeeded(p.prefix + "; " + detail)
}

// exchange sends the question over network on a connection bound to ctx and
// returns the reply whose ID matches; the client skips stray UDP replies
// and rejects a mismatched TCP one.
//
// NOTE: we dial ourselves rather than call Client.ExchangeContext, which
// honours ctx's deadline but not its cancellation.
func (p *dnsProber) exchange(
	ctx context.Context, network string,
) (*dns.Msg, error) {
	nc, err := p.dialer.DialContext(ctx, network, p.target)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	stop := bindConn(ctx, nc)
	defer stop()

	m := p.query.Copy()
	m.Id = dns.Id()
	r, _, err := p.client.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: nc})
	return r, err
}

// evaluateDNS decides whether reply r answers question q: it must be a
// response echoing q, with rcode NOERROR and an answer record for q's name
// (compared case-insensitively), class and type, whose address is in want
// or, if want is empty, any address. It returns a detail for the message.
// r may be any message a hostile server can send.
func evaluateDNS(q dns.Question, want []netip.Addr, r *dns.Msg) (bool, string) {
	switch {
	case r == nil:
		return false, "no reply"
	case !r.Response:
		return false, "reply is not a response"
	case len(r.Question) != 1:
		return false, fmt.Sprintf("reply has %d questions", len(r.Question))
	case !sameQuestion(r.Question[0], q):
		return false, "reply is for " + questionString(r.Question[0])
	case r.Rcode != dns.RcodeSuccess:
		return false, "got " + rcodeName(r.Rcode)
	}

	var first netip.Addr // the first unexpected address
	var n int            // how many unexpected addresses
	for _, rr := range r.Answer {
		addr, ok := answerAddr(q, rr)
		if !ok {
			continue
		}
		if len(want) == 0 || slices.Contains(want, addr) {
			return true, "received answer " + addr.String()
		}
		if n == 0 {
			first = addr
		}
		n++
	}
	return false, notAnswered(q, first, n)
}

// sameQuestion reports whether a echoes q, names compared
// case-insensitively.
func sameQuestion(a, q dns.Question) bool {
	return a.Qtype == q.Qtype && a.Qclass == q.Qclass &&
		sameName(a.Name, q.Name)
}

// questionString formats a question for a message, e.g.
// "example.test. IN A".
func questionString(q dns.Question) string {
	return fmt.Sprintf("%s %s %s",
		q.Name, dns.Class(q.Qclass), dns.Type(q.Qtype))
}

// sameName reports whether two domain names are equal, ignoring ASCII case
// as DNS does.
func sameName(a, b string) bool {
	return dns.CanonicalName(a) == dns.CanonicalName(b)
}

// answerAddr returns the address rr gives in answer to q, unmapped, or false
// if rr is not an answer to q.
func answerAddr(q dns.Question, rr dns.RR) (netip.Addr, bool) {
	if rr == nil {
		return netip.Addr{}, false
	}
	h := rr.Header()
	if h.Rrtype != q.Qtype || h.Class != dns.ClassINET ||
		!sameName(h.Name, q.Name) {
		return netip.Addr{}, false
	}
	var ip net.IP
	switch rr := rr.(type) {
	case *dns.A:
		ip = rr.A
	case *dns.AAAA:
		ip = rr.AAAA
	default:
		return netip.Addr{}, false
	}
	addr, ok := netip.AddrFromSlice(ip)
	return addr.Unmap(), ok
}

// notAnswered describes a reply without an acceptable answer to q: it had n
// answers of q's type, the first with address first, none of them expected.
func notAnswered(q dns.Question, first netip.Addr, n int) string {
	switch n {
	case 0:
		return "no " + dns.Type(q.Qtype).String() + " answer"
	case 1:
		return fmt.Sprintf("answer %s not expected", first)
	}
	return fmt.Sprintf("answer %s (and %d more) not expected", first, n-1)
}

// rcodeName names a response code, e.g. "NXDOMAIN".
func rcodeName(rcode int) string {
	if name, ok := dns.RcodeToString[rcode]; ok {
		return name
	}
	return fmt.Sprintf("rcode %d", rcode)
}
