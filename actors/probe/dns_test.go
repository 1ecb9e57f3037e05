package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/lbhealth/hcsupervisor/messages"
)

// testZone answers the DNS tests' questions; each name under example.test
// has its own behaviour. It counts the queries it got over TCP and signals
// on silenced each query it leaves unanswered.
type testZone struct {
	tcpQueries atomic.Int32
	silenced   chan struct{}
}

// newTestZone returns a zone ready to serve.
func newTestZone() *testZone {
	return &testZone{silenced: make(chan struct{}, 1)}
}

// ServeDNS answers r according to the name asked.
func (z *testZone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	tcp := w.RemoteAddr().Network() == "tcp"
	if tcp {
		z.tcpQueries.Add(1)
	}
	m := new(dns.Msg).SetReply(r)
	name := strings.ToLower(r.Question[0].Name)
	switch name {
	case "a.example.test.":
		m.Answer = rrs(name+" A 192.0.2.1", name+" A 192.0.2.2")
	case "aaaa.example.test.":
		m.Answer = rrs(name + " AAAA 2001:db8::1")
	case "upper.example.test.":
		m.Answer = rrs("UPPER.Example.TEST. A 192.0.2.1")
	case "mapped.example.test.":
		m.Answer = rrs(name + " AAAA ::ffff:192.0.2.1")
	case "cname.example.test.":
		m.Answer = rrs(name + " CNAME a.example.test.")
	case "types.example.test.":
		m.Answer = typedAnswers(name, r.Question[0].Qtype)
	case "chaos.example.test.":
		m.Answer = rrs(name + " CH A 192.0.2.1")
	case "nx.example.test.":
		m.Rcode = dns.RcodeNameError
	case "servfail.example.test.":
		m.Rcode = dns.RcodeServerFailure
	case "wrongq.example.test.":
		m.Question[0].Name = "other.example.test."
		m.Answer = rrs(name + " A 192.0.2.1")
	case "big.example.test.":
		m.Truncated = !tcp
		if tcp {
			m.Answer = rrs(name + " A 192.0.2.7")
		}
	case "cut.example.test.":
		if !tcp {
			_, _ = w.Write(cutReply(m))
			return
		}
		m.Answer = rrs(name + " A 192.0.2.8")
	case "tcpsilent.example.test.":
		if tcp {
			z.silence()
			return
		}
		m.Truncated = true
	case "wrongid.example.test.":
		m.Id++
		m.Answer = rrs(name + " A 192.0.2.1")
	case "tcpwrongid.example.test.":
		m.Truncated = !tcp
		if tcp {
			m.Id++
			m.Answer = rrs(name + " A 192.0.2.1")
		}
	case "silent.example.test.":
		z.silence()
		return
	}
	_ = w.WriteMsg(m)
}

// silence signals on z.silenced that a query goes unanswered, without
// blocking.
func (z *testZone) silence() {
	select {
	case z.silenced <- struct{}{}:
	default:
	}
}

// cutReply returns reply m, truncated (TC set) with three answers, packed
// and then cut short in the last record, as a server that truncates
// without care sends it: the header unpacks, the answers do not.
func cutReply(m *dns.Msg) []byte {
	m.Truncated = true
	name := m.Question[0].Name
	m.Answer = rrs(name+" A 192.0.2.1", name+" A 192.0.2.2", name+" A 192.0.2.3")
	b, err := m.Pack()
	if err != nil {
		panic(fmt.Sprintf("packing the cut reply: %v", err))
	}
	return b[:len(b)-5]
}

// rrs parses resource records in zone file form, with TTL 60 and class
// IN unless given.
func rrs(lines ...string) []dns.RR {
	out := make([]dns.RR, len(lines))
	for i, line := range lines {
		rr, err := dns.NewRR("$TTL 60\n" + line)
		if err != nil {
			panic(fmt.Sprintf("bad test record %q: %v", line, err))
		}
		out[i] = rr
	}
	return out
}

// startDNS serves h over UDP and TCP on the same 127.0.0.1 port.
func startDNS(t *testing.T, h dns.Handler) netip.AddrPort {
	t.Helper()
	pc, ln := listenDNS(t)
	startDNSServer(t, &dns.Server{PacketConn: pc, Handler: h})
	startDNSServer(t, &dns.Server{Listener: ln, Handler: h})
	return addrPort(t, pc.LocalAddr())
}

// listenDNS opens a UDP socket and a TCP listener on one loopback port.
func listenDNS(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 10 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen udp: %v", err)
		}
		ln, err := net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close() // TCP port taken: try another.
	}
	t.Fatalf("no loopback port free for both UDP and TCP")
	return nil, nil
}

// startDNSServer starts srv on its socket and shuts it down at cleanup.
func startDNSServer(t *testing.T, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("start DNS server: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
}

func TestDNS(t *testing.T) {
	zone := newTestZone()
	ap := startDNS(t, zone)
	tests := []struct {
		name        string
		query       string
		qtype       string
		expected    []string
		wantSuccess bool
		wantMsg     string
	}{
		{
			name:        "A expected",
			query:       "a.example.test",
			expected:    []string{"192.0.2.2"},
			wantSuccess: true,
			wantMsg: fmt.Sprintf("DNS a.example.test. IN A query to %s; "+
				"received answer 192.0.2.2", ap),
		},
		{
			name:        "A with no expected IPs",
			query:       "a.example.test.",
			wantSuccess: true,
			wantMsg:     "; received answer 192.0.2.1",
		},
		{
			name:     "A not expected",
			query:    "a.example.test",
			expected: []string{"192.0.2.9"},
			wantMsg:  "; answer 192.0.2.1 (and 1 more) not expected",
		},
		{
			name:        "AAAA expected",
			query:       "aaaa.example.test",
			qtype:       "AAAA",
			expected:    []string{"2001:db8::1"},
			wantSuccess: true,
			wantMsg: fmt.Sprintf("DNS aaaa.example.test. IN AAAA query to %s; "+
				"received answer 2001:db8::1", ap),
		},
		{
			name:     "AAAA not expected",
			query:    "aaaa.example.test",
			qtype:    "AAAA",
			expected: []string{"2001:db8::9"},
			wantMsg:  "; answer 2001:db8::1 not expected",
		},
		{
			name:     "AAAA asked, A answered",
			query:    "a.example.test",
			qtype:    "aaaa",
			expected: []string{"2001:db8::1"},
			wantMsg:  "; no AAAA answer",
		},
		{
			name:        "v4-mapped AAAA unmapped",
			query:       "mapped.example.test",
			qtype:       "AAAA",
			expected:    []string{"::ffff:192.0.2.1"},
			wantSuccess: true,
			wantMsg:     "; received answer 192.0.2.1",
		},
		{
			name:    "NXDOMAIN",
			query:   "nx.example.test",
			wantMsg: "; got NXDOMAIN",
		},
		{
			name:    "SERVFAIL",
			query:   "servfail.example.test",
			wantMsg: "; got SERVFAIL",
		},
		{
			name:    "no answer",
			query:   "empty.example.test",
			wantMsg: "; no A answer",
		},
		{
			name:    "CNAME is not followed",
			query:   "cname.example.test",
			wantMsg: "; no A answer",
		},
		{
			name:    "class other than IN",
			query:   "chaos.example.test",
			wantMsg: "; no A answer",
		},
		{
			name:        "owner name in other case",
			query:       "upper.example.test",
			wantSuccess: true,
			wantMsg:     "; received answer 192.0.2.1",
		},
		{
			name:        "query name in other case",
			query:       "A.Example.TEST",
			wantSuccess: true,
			wantMsg:     "DNS A.Example.TEST. IN A query",
		},
		{
			name:    "reply for another question",
			query:   "wrongq.example.test",
			wantMsg: "; reply is for other.example.test. IN A",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, messages.CheckerDNS, ap, func(c *messages.Config) {
				c.Query, c.QueryType = tc.query, tc.qtype
				c.ExpectedIPs = parseAddrs(t, tc.expected)
			})

			got := runProbe(t, cfg, probeTimeout)
			checkResult(t, got, tc.wantSuccess, tc.wantMsg)
		})
	}
	if got := zone.tcpQueries.Load(); got != 0 {
		t.Errorf("server got %d queries over TCP, want 0", got)
	}
}

// parseAddrs parses IP addresses.
func parseAddrs(t *testing.T, ss []string) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	for _, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatalf("parse %q: %v", s, err)
		}
		out = append(out, a)
	}
	return out
}

// TestDNSTruncatedFallsBackToTCP asks names whose UDP replies are
// truncated, one whole and one cut mid-record, which does not unpack:
// each must be asked again over TCP, whose answer decides.
func TestDNSTruncatedFallsBackToTCP(t *testing.T) {
	tests := []struct {
		query, want string
	}{
		{"big.example.test", "192.0.2.7"},
		{"cut.example.test", "192.0.2.8"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			zone := newTestZone()
			ap := startDNS(t, zone)
			cfg := testConfig(t, messages.CheckerDNS, ap, func(c *messages.Config) {
				c.Query = tc.query
				c.ExpectedIPs = parseAddrs(t, []string{tc.want})
			})

			got := runProbe(t, cfg, probeTimeout)
			checkResult(t, got, true, "; received answer "+tc.want)
			if got := zone.tcpQueries.Load(); got != 1 {
				t.Errorf("server got %d queries over TCP, want 1", got)
			}
		})
	}
}

// TestDNSWrongIDOverTCP asks a name whose UDP reply is truncated and
// whose TCP reply carries another ID: over TCP, unlike UDP, that reply is
// the only one, and the probe must fail on it at once.
func TestDNSWrongIDOverTCP(t *testing.T) {
	ap := startDNS(t, newTestZone())
	cfg := testConfig(t, messages.CheckerDNS, ap, func(c *messages.Config) {
		c.Query = "tcpwrongid.example.test"
	})

	got := runProbe(t, cfg, probeTimeout)
	checkResult(t, got, false, "; query over TCP failed: "+dns.ErrId.Error())
}

// TestCutReplyUnpacksInPart checks the premise of the cut.example.test
// case: the reply fails to unpack, yet its header says TC.
func TestCutReplyUnpacksInPart(t *testing.T) {
	q := new(dns.Msg).SetQuestion("cut.example.test.", dns.TypeA)
	var got dns.Msg
	err := got.Unpack(cutReply(new(dns.Msg).SetReply(q)))
	if err == nil || !got.Truncated {
		t.Errorf("Unpack(cut reply) = %v, Truncated %v; want an error and TC",
			err, got.Truncated)
	}
}

// TestDNSSilentServer covers a server that never answers, one whose
// answers carry the wrong ID, which the probe must ignore, and one that
// truncates over UDP and then never answers over TCP.
func TestDNSSilentServer(t *testing.T) {
	tests := []struct {
		query, wantMsg string
	}{
		{"silent.example.test", "; query timed out: "},
		{"wrongid.example.test", "; query timed out: "},
		{"tcpsilent.example.test", "; query over TCP timed out: "},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			checkNoLeaks(t)
			ap := startDNS(t, newTestZone())
			cfg := testConfig(t, messages.CheckerDNS, ap, func(c *messages.Config) {
				c.Query = tc.query
			})

			probeSilent(t, cfg, tc.wantMsg)
		})
	}
}

// TestDNSCancel cancels a probe waiting for an answer over UDP, and one
// waiting over TCP after a truncated reply.
func TestDNSCancel(t *testing.T) {
	tests := []struct {
		query, wantMsg string
	}{
		{"silent.example.test", "; query canceled: "},
		{"tcpsilent.example.test", "; query over TCP canceled: "},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			checkNoLeaks(t)
			zone := newTestZone()
			ap := startDNS(t, zone)
			cfg := testConfig(t, messages.CheckerDNS, ap, func(c *messages.Config) {
				c.Query = tc.query
			})

			checkResult(t, probeCancelled(t, cfg, zone.silenced), false, tc.wantMsg)
		})
	}
}

// TestDNSCancelledBeforeExchange cancels the context after the dial and
// before the question goes out: the exchange must end at once rather than
// at the deadline. The connection makes the cancel land first, before
// any deadline the exchange might set itself, which would undo it (a
// dns.Client's exchange sets them).
func TestDNSCancelledBeforeExchange(t *testing.T) {
	checkNoLeaks(t)
	ap := startDNS(t, newTestZone())
	cfg := testConfig(t, messages.CheckerDNS, ap, func(c *messages.Config) {
		c.Query = "silent.example.test"
	})
	p := mustNew(t, &cfg).(*dnsProber)
	nc, err := p.dialer.DialContext(t.Context(), "udp", p.target)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer nc.Close()
	conn := &cancelFirstConn{
		UDPConn:   nc.(*net.UDPConn),
		cancelled: make(chan struct{}),
	}
	ctx, cancel := context.WithTimeout(t.Context(), probeTimeout)
	cancel()

	start := time.Now()
	r, err := p.roundTrip(ctx, conn)
	if elapsed := time.Since(start); elapsed > lateness {
		t.Errorf("exchange took %v after the cancel, want at most %v",
			elapsed, lateness)
	}
	if r != nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("roundTrip() = %v, %v; want no reply and %v",
			r, err, os.ErrDeadlineExceeded)
	}
}

// cancelFirstConn is a UDP connection on which a cancel wins the race
// against an exchange that sets deadlines of its own: it holds each
// SetReadDeadline and SetWriteDeadline (for at most lateness) until the
// expired deadline of a cancel has been set, so that any such call
// undoes the cancel.
type cancelFirstConn struct {
	*net.UDPConn
	cancelled chan struct{} // closed once the expired deadline is set
	once      sync.Once
}

// SetDeadline sets the deadline and notes when it is the cancel's.
func (c *cancelFirstConn) SetDeadline(t time.Time) error {
	err := c.UDPConn.SetDeadline(t)
	if t.Equal(expired) {
		c.once.Do(func() { close(c.cancelled) })
	}
	return err
}

// SetReadDeadline sets the read deadline after the cancel's.
func (c *cancelFirstConn) SetReadDeadline(t time.Time) error {
	c.afterCancel()
	return c.UDPConn.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline after the cancel's.
func (c *cancelFirstConn) SetWriteDeadline(t time.Time) error {
	c.afterCancel()
	return c.UDPConn.SetWriteDeadline(t)
}

// afterCancel waits for the cancel's deadline, at most lateness.
func (c *cancelFirstConn) afterCancel() {
	timer := time.NewTimer(lateness)
	defer timer.Stop()
	select {
	case <-c.cancelled:
	case <-timer.C:
	}
}

func TestDNSUnsupportedType(t *testing.T) {
	ap := netip.MustParseAddrPort("127.0.0.1:1")
	cfg := testConfig(t, messages.CheckerDNS, ap, nil)
	// Bypass validation, as a config from a buggy caller might.
	cfg.QueryType = "SRV"

	got := runProbe(t, cfg, probeTimeout)
	checkResult(t, got, false, "; unsupported query type")
}

func TestDNSRefused(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	ap := addrPort(t, pc.LocalAddr())
	pc.Close()
	cfg := testConfig(t, messages.CheckerDNS, ap, nil)

	got := runProbe(t, cfg, probeTimeout)
	checkResult(t, got, false, "; query failed: ")
	checkResult(t, got, false, "connection refused")
}

func TestEvaluateDNS(t *testing.T) {
	q := question("Example.Test.", dns.TypeA)
	reply := func(edit func(m *dns.Msg)) *dns.Msg {
		m := new(dns.Msg).SetReply(new(dns.Msg).SetQuestion(q.Name, q.Qtype))
		m.Answer = rrs("example.test. A 192.0.2.1")
		if edit != nil {
			edit(m)
		}
		return m
	}
	tests := []struct {
		name   string
		r      *dns.Msg
		want   []string
		wantOK bool
		detail string
	}{
		{name: "nil", detail: "no reply"},
		{
			name:   "answer",
			r:      reply(nil),
			wantOK: true,
			detail: "received answer 192.0.2.1",
		},
		{
			name:   "not a response",
			r:      reply(func(m *dns.Msg) { m.Response = false }),
			detail: "reply is not a response",
		},
		{
			name:   "no question",
			r:      reply(func(m *dns.Msg) { m.Question = nil }),
			detail: "reply has 0 questions",
		},
		{
			name: "two questions",
			r: reply(func(m *dns.Msg) {
				m.Question = append(m.Question, m.Question[0])
			}),
			detail: "reply has 2 questions",
		},
		{
			name:   "question of other type",
			r:      reply(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAAAA }),
			detail: "reply is for Example.Test. IN AAAA",
		},
		{
			name:   "question of other class",
			r:      reply(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }),
			detail: "reply is for Example.Test. CH A",
		},
		{
			name: "answer for other name",
			r: reply(func(m *dns.Msg) {
				m.Answer = rrs("other.test. A 192.0.2.1")
			}),
			detail: "no A answer",
		},
		{
			name:   "empty A record",
			r:      reply(func(m *dns.Msg) { m.Answer[0].(*dns.A).A = nil }),
			detail: "no A answer",
		},
		{
			name:   "nil record",
			r:      reply(func(m *dns.Msg) { m.Answer = []dns.RR{nil} }),
			detail: "no A answer",
		},
		{
			name: "16-byte A record",
			r: reply(func(m *dns.Msg) {
				m.Answer[0].(*dns.A).A = net.ParseIP("192.0.2.1").To16()
			}),
			want:   []string{"192.0.2.1"},
			wantOK: true,
			detail: "received answer 192.0.2.1",
		},
		{
			name: "second answer expected",
			r: reply(func(m *dns.Msg) {
				m.Answer = rrs("example.test. A 192.0.2.1",
					"example.test. A 192.0.2.2")
			}),
			want:   []string{"192.0.2.2"},
			wantOK: true,
			detail: "received answer 192.0.2.2",
		},
		{
			name:   "answer not expected",
			r:      reply(nil),
			want:   []string{"192.0.2.2"},
			detail: "answer 192.0.2.1 not expected",
		},
		{
			name:   "rcode without a name",
			r:      reply(func(m *dns.Msg) { m.Rcode = 4000 }),
			detail: "got rcode 4000",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gotOK, gotDetail := evaluateDNS(q, tc.want, tc.r)
			if gotOK != tc.wantOK || gotDetail != tc.detail {
				t.Errorf("evaluateDNS() = %v, %q, want %v, %q",
					gotOK, gotDetail, tc.wantOK, tc.detail)
			}
		})
	}
}

// FuzzEvaluateDNS checks that no reply a server can send makes the answer
// evaluation panic, and that it succeeds only with NOERROR and an answer.
func FuzzEvaluateDNS(f *testing.F) {
	for _, m := range fuzzSeeds() {
		packed, err := m.Pack()
		if err != nil {
			f.Fatalf("pack seed: %v", err)
		}
		f.Add(packed)
	}
	f.Add([]byte{})
	f.Add([]byte{0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0})

	questions := []struct {
		q    dns.Question
		want []string
	}{
		{q: question("example.test.", dns.TypeA)},
		{q: question("example.test.", dns.TypeA), want: []string{"192.0.2.1"}},
		{q: question("Example.Test.", dns.TypeAAAA), want: []string{"2001:db8::1"}},
		{q: question("example.test.", dns.TypeMX), want: []string{"10 mx.test."}},
		{q: question("example.test.", dns.TypeSOA), want: []string{"ns.test."}},
		{q: question("example.test.", dns.TypeTXT)},
	}
	f.Fuzz(func(t *testing.T, packed []byte) {
		r := new(dns.Msg)
		if err := r.Unpack(packed); err != nil {
			return
		}
		for _, tc := range questions {
			ok, detail := evaluateDNS(tc.q, tc.want, r)
			if ok && (r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0) {
				t.Errorf("success with rcode %d and %d answers",
					r.Rcode, len(r.Answer))
			}
			if detail == "" {
				t.Errorf("evaluateDNS() gave no detail")
			}
		}
	})
}

// question returns the IN question for name and qtype.
func question(name string, qtype uint16) dns.Question {
	return dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}
}

// fuzzSeeds returns replies of each kind the evaluation distinguishes.
func fuzzSeeds() []*dns.Msg {
	reply := func(qtype uint16, answers ...string) *dns.Msg {
		m := new(dns.Msg).SetReply(new(dns.Msg).SetQuestion("example.test.", qtype))
		m.Answer = rrs(answers...)
		return m
	}
	nx := reply(dns.TypeA)
	nx.Rcode = dns.RcodeNameError
	truncated := reply(dns.TypeA)
	truncated.Truncated = true
	twoQuestions := reply(dns.TypeA, "example.test. A 192.0.2.1")
	twoQuestions.Question = append(twoQuestions.Question, twoQuestions.Question[0])
	return []*dns.Msg{
		reply(dns.TypeA, "example.test. A 192.0.2.1"),
		reply(dns.TypeA, "EXAMPLE.test. A 192.0.2.9", "example.test. A 192.0.2.1"),
		reply(dns.TypeAAAA, "example.test. AAAA 2001:db8::1"),
		reply(dns.TypeA, "example.test. CNAME other.test.",
			"other.test. A 192.0.2.1"),
		reply(dns.TypeMX, "example.test. MX 10 MX.test."),
		reply(dns.TypeSOA, "example.test. SOA ns.test. h.test. 1 2 3 4 5"),
		reply(dns.TypeTXT, `example.test. TXT "a" "b c"`),
		nx,
		truncated,
		twoQuestions,
	}
}
