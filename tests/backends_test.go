package tests

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/lbhealth/hcsupervisor/messages"
)

// Probe timing of the checks the tests configure. The interval is short,
// so that the suite is fast. No probe of the suite waits for its timeout
// (backends answer or refuse at once, and the silent one has its own), so
// the timeout only has to be long enough that a loaded machine never
// times out a loopback probe; 500ms was not, under -race with two cores
// shared with fuzzers.
const (
	checkInterval = 200 * time.Millisecond
	checkTimeout  = 2 * time.Second
)

// loopback is the only address the suite sends traffic to.
var loopback = netip.MustParseAddr("127.0.0.1")

// addrPort returns a listener's address.
func addrPort(t testing.TB, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatalf("parsing listener address %s: %v", a, err)
	}
	return ap
}

// tcpBackend is a TCP server on loopback that counts the connections it
// accepts and handles each with its handler in the accepting goroutine.
type tcpBackend struct {
	addr     netip.AddrPort
	ln       net.Listener
	accepted atomic.Int64
	done     chan struct{}

	mu    sync.Mutex
	conns []net.Conn
}

// startTCP starts a TCP backend; hold keeps connections open until the
// backend closes instead of closing each at once. It is closed when the
// test ends.
func startTCP(t testing.TB, hold bool) *tcpBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	b := &tcpBackend{addr: addrPort(t, ln.Addr()), ln: ln, done: make(chan struct{})}
	go b.serve(hold)
	t.Cleanup(b.close)
	return b
}

func (b *tcpBackend) serve(hold bool) {
	defer close(b.done)
	for {
		conn, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.accepted.Add(1)
		if !hold {
			conn.Close()
			continue
		}
		b.mu.Lock()
		b.conns = append(b.conns, conn)
		b.mu.Unlock()
	}
}

// close stops the backend and closes the connections it holds.
func (b *tcpBackend) close() {
	b.ln.Close()
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
	b.conns = nil
}

// refusedAddr returns a loopback address where nothing listens: it
// listens on a free port and closes it.
func refusedAddr(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ap := addrPort(t, ln.Addr())
	ln.Close()
	return ap
}

// httpBackend is an HTTP server on loopback whose status code the test
// controls, and which logs the code of every request it answered. When
// gated, an error answer waits for the test to release it.
type httpBackend struct {
	addr netip.AddrPort
	srv  *httptest.Server
	code atomic.Int64

	gated    atomic.Bool
	gate     chan struct{}
	openGate func()
	quit     chan struct{}

	mu     sync.Mutex
	served []int
}

// httpBody is what every httpBackend answers with.
const httpBody = "OK backend ready\n"

// startHTTP starts an HTTP backend answering code. It is closed when the
// test ends.
func startHTTP(t testing.TB, code int) *httpBackend {
	t.Helper()
	b := &httpBackend{gate: make(chan struct{}), quit: make(chan struct{})}
	b.openGate = sync.OnceFunc(func() { close(b.gate) })
	b.code.Store(int64(code))
	b.srv = httptest.NewServer(http.HandlerFunc(b.serveHTTP))
	b.addr = addrPort(t, b.srv.Listener.Addr())
	t.Cleanup(b.srv.Close)
	// Runs first: Close waits for handlers, so none may stay blocked.
	t.Cleanup(func() { close(b.quit) })
	return b
}

func (b *httpBackend) serveHTTP(w http.ResponseWriter, r *http.Request) {
	code := int(b.code.Load())
	b.mu.Lock()
	b.served = append(b.served, code)
	b.mu.Unlock()
	if code >= 400 && b.gated.Load() {
		select {
		case <-b.gate:
		case <-b.quit:
			return
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(code)
	io.WriteString(w, httpBody)
}

// release lets one gated error answer go out, waiting for a probe to ask
// for it.
func (b *httpBackend) release(t testing.TB) {
	t.Helper()
	select {
	case b.gate <- struct{}{}:
	case <-time.After(waitTimeout):
		t.Fatalf("no probe waited for a gated answer within %v", waitTimeout)
	}
}

// setCode makes the backend answer code from now on.
func (b *httpBackend) setCode(code int) { b.code.Store(int64(code)) }

// log returns the codes of the requests answered so far, in order.
func (b *httpBackend) log() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.served...)
}

// requests returns how many requests the backend answered.
func (b *httpBackend) requests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.served)
}

// startDNS starts a DNS server on loopback UDP that answers A questions
// for the names in zone and NXDOMAIN otherwise. It is shut down when the
// test ends.
func startDNS(t testing.TB, zone map[string]netip.Addr) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	started := make(chan struct{})
	srv := &dns.Server{
		PacketConn:        pc,
		Handler:           dnsZone(zone),
		NotifyStartedFunc: func() { close(started) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-served:
		t.Fatalf("dns server: %v", err)
	case <-time.After(waitTimeout):
		t.Fatalf("dns server did not start")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		<-served
	})
	return addrPort(t, pc.LocalAddr())
}

// dnsZone answers A questions from a fixed map.
type dnsZone map[string]netip.Addr

func (z dnsZone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg).SetReply(r)
	q := r.Question[0]
	ip, ok := z[dns.CanonicalName(q.Name)]
	switch {
	case !ok:
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeA && ip.Is4():
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{
				Name:   q.Name,
				Rrtype: dns.TypeA,
				Class:  dns.ClassINET,
				Ttl:    60,
			},
			A: ip.AsSlice(),
		})
	}
	w.WriteMsg(m)
}

// baseConfig returns a config of checker for target with the suite's
// interval and timeout.
func baseConfig(
	id uint64, checker messages.CheckerType, target netip.AddrPort,
) messages.Config {
	return messages.Config{
		ID:       id,
		Interval: checkInterval,
		Timeout:  checkTimeout,
		Checker:  checker,
		IP:       target.Addr(),
		Port:     int(target.Port()),
	}
}

// tcpConfig returns a TCP connect check of target.
func tcpConfig(id uint64, target netip.AddrPort) messages.Config {
	return baseConfig(id, messages.CheckerTCP, target)
}

// httpConfig returns an HTTP check of target expecting 200 and a body
// starting with response, if set.
func httpConfig(id uint64, target netip.AddrPort, response string) messages.Config {
	c := baseConfig(id, messages.CheckerHTTP, target)
	c.Path = "/healthz"
	c.Response = response
	return c
}

// dnsConfig returns a DNS A check of target asking for name and expecting
// one of want.
func dnsConfig(
	id uint64, target netip.AddrPort, name string, want ...netip.Addr,
) messages.Config {
	c := baseConfig(id, messages.CheckerDNS, target)
	c.Query = name
	c.ExpectedIPs = want
	return c
}

// silentConfig returns a TCP check of a backend that accepts and never
// answers: its first probe does not complete while the test runs.
func silentConfig(id uint64, target netip.AddrPort) messages.Config {
	c := tcpConfig(id, target)
	c.Interval = time.Hour
	c.Timeout = time.Hour
	c.Send = "PING\r\n"
	c.Receive = "+PONG"
	return c
}

// targetString formats target as the probes' messages do.
func targetString(ap netip.AddrPort) string { return fmt.Sprint(ap) }
