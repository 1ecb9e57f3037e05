package probe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/lbhealth/hcsupervisor/messages"
)

// dnsProber asks a backend one question and checks the answer. It is
// immutable after newDNS and so safe for concurrent use.
type dnsProber struct {
	timeout time.Duration
	target  string
	prefix  string
	query   *dns.Msg // template; each probe sends a copy with a fresh ID
	want    []string // expected answers in canonical form; empty: any
	dialer  net.Dialer
}

// queryTypes are the query types whose answers answerForm can give.
var queryTypes = map[uint16]bool{
	dns.TypeA: true, dns.TypeAAAA: true, dns.TypeCNAME: true, dns.TypeNS: true,
	dns.TypeMX: true, dns.TypePTR: true, dns.TypeTXT: true, dns.TypeSOA: true,
}

// newDNS builds the prober for a DNS config, or a brokenProber if its query
// type or an expected answer is unusable (validation rules both out).
func newDNS(cfg *messages.Config, o Options) Prober {
	name := dns.Fqdn(cfg.Query)
	prefix := fmt.Sprintf("DNS %s IN %s query to %s",
		name, cfg.QueryType, cfg.Target())
	qtype, ok := dns.StringToType[cfg.QueryType]
	if !ok || !queryTypes[qtype] {
		return &brokenProber{message: prefix + "; unsupported query type"}
	}
	want, err := expectedAnswers(cfg)
	if err != nil {
		return &brokenProber{message: prefix + "; " + err.Error()}
	}
	return &dnsProber{
		timeout: cfg.Timeout,
		target:  cfg.Target(),
		prefix:  prefix,
		query:   new(dns.Msg).SetQuestion(name, qtype),
		want:    want,
		dialer:  newDialer(cfg.Mark, o.ResetClose),
	}
}

// expectedAnswers returns cfg's expected answers in the canonical form
// answerForm gives a record: addresses unmapped, the rest as
// messages.NormalizeAnswer makes them.
func expectedAnswers(cfg *messages.Config) ([]string, error) {
	var want []string
	for _, ip := range cfg.ExpectedIPs {
		want = append(want, ip.Unmap().String())
	}
	for _, a := range cfg.ExpectedAnswers {
		n, err := messages.NormalizeAnswer(cfg.QueryType, a)
		if err != nil {
			return nil, err
		}
		want = append(want, n)
	}
	return want, nil
}

// Probe asks the question over UDP, again over TCP if the reply was
// truncated, and evaluates the reply. A truncated reply goes to TCP even
// when it failed to unpack: a server that sets TC may cut the message
// mid-record, and what matters is only the TC bit of its header.
func (p *dnsProber) Probe(ctx context.Context) messages.ProbeResult {
	ctx, cancel := bound(ctx, p.timeout)
	defer cancel()

	step := "query"
	r, err := p.exchange(ctx, "udp")
	if r != nil && r.Truncated {
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

// exchange dials the target over network and asks the question on a
// connection bound to ctx; see roundTrip.
func (p *dnsProber) exchange(
	ctx context.Context, network string,
) (*dns.Msg, error) {
	nc, err := p.dialer.DialContext(ctx, network, p.target)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	return p.roundTrip(ctx, nc)
}

// roundTrip binds nc to ctx, sends a copy of the question with a fresh ID
// and returns the reply with that ID: over UDP it skips replies with
// another ID, over TCP it rejects one. A reply that failed to unpack comes
// with its error, and only if its header carries the ID.
//
// NOTE: we drive dns.Conn ourselves rather than call a dns.Client:
// ExchangeContext honours ctx's deadline but not its cancellation, and
// ExchangeWithConnContext sets the connection's deadlines itself, which
// undoes the expired deadline that bindConn sets when ctx is cancelled
// before that point.
func (p *dnsProber) roundTrip(
	ctx context.Context, nc net.Conn,
) (*dns.Msg, error) {
	stop := bindConn(ctx, nc)
	defer stop()

	co := &dns.Conn{Conn: nc, UDPSize: dns.DefaultMsgSize}
	m := p.query.Copy()
	m.Id = dns.Id()
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	_, datagram := nc.(net.PacketConn)
	for {
		r, err := co.ReadMsg()
		switch {
		case r != nil && r.Id == m.Id:
			return r, err // err: unpacked in part; its header may say TC
		case err != nil:
			return nil, err
		case !datagram:
			return nil, dns.ErrId
		}
		// A stray datagram with another ID: read on.
	}
}

// evaluateDNS decides whether reply r answers question q: it must be a
// response echoing q, with rcode NOERROR and an answer record for q's name
// (compared case-insensitively), class and type, whose answer form is in
// want or, if want is empty, any. It returns a detail for the message.
// r may be any message a hostile server can send.
func evaluateDNS(q dns.Question, want []string, r *dns.Msg) (bool, string) {
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

	var first string // the first unexpected answer
	var n int        // how many unexpected answers
	for _, rr := range r.Answer {
		got, ok := answerForm(q, rr)
		if !ok {
			continue
		}
		if len(want) == 0 || slices.ContainsFunc(want, func(w string) bool {
			return answerMatches(q.Qtype, w, got)
		}) {
			return true, "received answer " + got
		}
		if n == 0 {
			first = got
		}
		n++
	}
	return false, notAnswered(q, first, n)
}

// answerMatches reports whether got, the answer form of a record of type
// qtype, is the expected answer want. An SOA answer matches on the leading
// fields want gives.
func answerMatches(qtype uint16, want, got string) bool {
	if qtype == dns.TypeSOA {
		return got == want || strings.HasPrefix(got, want+" ")
	}
	return got == want
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

// answerForm returns the answer rr gives to q in the canonical form of
// messages.NormalizeAnswer (addresses unmapped), or false if rr is not an
// answer to q.
func answerForm(q dns.Question, rr dns.RR) (string, bool) {
	if rr == nil {
		return "", false
	}
	h := rr.Header()
	if h.Rrtype != q.Qtype || h.Class != dns.ClassINET ||
		!sameName(h.Name, q.Name) {
		return "", false
	}
	name := messages.CanonicalName
	switch rr := rr.(type) {
	case *dns.A:
		return addrForm(rr.A)
	case *dns.AAAA:
		return addrForm(rr.AAAA)
	case *dns.CNAME:
		return name(rr.Target), true
	case *dns.NS:
		return name(rr.Ns), true
	case *dns.PTR:
		return name(rr.Ptr), true
	case *dns.MX:
		return fmt.Sprintf("%d %s", rr.Preference, name(rr.Mx)), true
	case *dns.TXT:
		return strings.Join(rr.Txt, ""), true
	case *dns.SOA:
		return fmt.Sprintf("%s %s %d %d %d %d %d", name(rr.Ns), name(rr.Mbox),
			rr.Serial, rr.Refresh, rr.Retry, rr.Expire, rr.Minttl), true
	}
	return "", false
}

// addrForm returns an A or AAAA record's address, unmapped.
func addrForm(ip net.IP) (string, bool) {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return "", false
	}
	return addr.Unmap().String(), true
}

// notAnswered describes a reply without an acceptable answer to q: it had n
// answers of q's type, the first being first, none of them expected.
func notAnswered(q dns.Question, first string, n int) string {
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
