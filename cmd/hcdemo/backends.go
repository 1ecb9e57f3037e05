package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Timeouts of the demo backends.
const (
	// echoIdle is how long the echo server waits for a client to send
	// more before it hangs up.
	echoIdle = 5 * time.Second
	// backendReadHeader bounds how long an HTTP backend waits for a
	// request's headers.
	backendReadHeader = 5 * time.Second
	// backendStop bounds how long the DNS backend takes to shut down.
	backendStop = 2 * time.Second
)

// demoName is the only name the DNS backend knows.
const demoName = "demo.test."

// demoAddr is demoName's only A record; wrongAddr is an address a check
// expects in vain. Both are in TEST-NET-1, reserved for documentation.
var (
	demoAddr  = netip.MustParseAddr("192.0.2.10")
	wrongAddr = netip.MustParseAddr("192.0.2.99")
)

// backends are the real servers that the demo's checks probe. Each listens
// on 127.0.0.1, on a port the kernel picked, and never on any other
// address. Make them with startBackends; Close stops them all. A backends
// is not safe for concurrent use.
type backends struct {
	// Echo is a TCP server that writes back whatever it reads.
	Echo netip.AddrPort
	// Refused is a TCP port that was bound and closed again, so connects
	// to it are refused.
	Refused netip.AddrPort
	// HTTPOK, HTTPDown and HTTPFlap are HTTP servers whose /healthz
	// answers 200 "ok", 503, and alternately 200 and 500.
	HTTPOK, HTTPDown, HTTPFlap netip.AddrPort
	// HTTPS answers /healthz with 200 "ok" over TLS, with a self-signed
	// certificate.
	HTTPS netip.AddrPort
	// DNS answers queries for demoName over UDP and TCP on one port.
	DNS netip.AddrPort
	// UDPEcho writes every datagram back to its sender.
	UDPEcho netip.AddrPort
	// RADIUS answers Access-Requests signed with radiusSecret: Accept for
	// radiusUser and radiusPassword, Reject otherwise.
	RADIUS netip.AddrPort

	stops []func() error
}

// backendStart starts one backend and returns its address and a function
// that stops it and waits for it; stop is nil when there is nothing to
// stop.
type backendStart func() (addr netip.AddrPort, stop func() error, err error)

// startBackends starts every backend. The flapping HTTP backend answers
// 200 for flapPeriod, then 500 for flapPeriod, and so on.
func startBackends(flapPeriod time.Duration) (_ *backends, err error) {
	cert, err := selfSignedCert()
	if err != nil {
		return nil, fmt.Errorf("making a TLS certificate: %w", err)
	}
	flap := newFlapper(flapPeriod)
	ok := fixedAnswer(http.StatusOK, "ok\n")
	down := fixedAnswer(http.StatusServiceUnavailable, "unavailable\n")

	b := &backends{}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	steps := []struct {
		name  string
		addr  *netip.AddrPort
		start backendStart
	}{
		{"tcp echo server", &b.Echo, startEcho},
		{"refused port", &b.Refused, refusedPort},
		{"http server", &b.HTTPOK, httpBackend(ok, nil)},
		{"http 503 server", &b.HTTPDown, httpBackend(down, nil)},
		{"flapping http server", &b.HTTPFlap, httpBackend(flap.answer, nil)},
		{"https server", &b.HTTPS, httpBackend(ok, &cert)},
		{"dns server", &b.DNS, startDNS},
		{"udp echo server", &b.UDPEcho, startUDPEcho},
		{"radius server", &b.RADIUS, startRADIUS},
	}
	for _, s := range steps {
		addr, stop, err := s.start()
		if err != nil {
			return nil, fmt.Errorf("starting %s: %w", s.name, err)
		}
		*s.addr = addr
		if stop != nil {
			b.stops = append(b.stops, stop)
		}
	}
	return b, nil
}

// Close stops every backend, the last started first, and waits for them.
func (b *backends) Close() error {
	var errs []error
	for i := len(b.stops) - 1; i >= 0; i-- {
		errs = append(errs, b.stops[i]())
	}
	b.stops = nil
	return errors.Join(errs...)
}

// listenTCP listens on an ephemeral TCP port of 127.0.0.1.
func listenTCP() (net.Listener, error) {
	return net.Listen("tcp4", "127.0.0.1:0")
}

// addrOf returns the address of a TCP or UDP socket as a plain IPv4 or
// IPv6 address and port.
func addrOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// refusedPort binds a port and closes it, so that connects to it are
// refused.
//
// NOTE: the kernel may later give the port to another socket; within a
// demo's lifetime that is unlikely enough to accept.
func refusedPort() (netip.AddrPort, func() error, error) {
	ln, err := listenTCP()
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	addr := addrOf(ln.Addr())
	return addr, nil, ln.Close()
}

// echoServer is a TCP server that writes back whatever each client sends,
// until the client hangs up or sends nothing for echoIdle.
type echoServer struct {
	ln net.Listener
	wg sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

// startEcho starts an echoServer.
func startEcho() (netip.AddrPort, func() error, error) {
	ln, err := listenTCP()
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	s := &echoServer{ln: ln, conns: make(map[net.Conn]bool)}
	s.wg.Add(1)
	go s.serve()
	return addrOf(ln.Addr()), s.close, nil
}

// serve accepts connections until the listener is closed.
func (s *echoServer) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go s.echo(conn)
	}
}

// echo copies what conn sends back to it.
func (s *echoServer) echo(conn net.Conn) {
	defer s.wg.Done()
	defer conn.Close()
	if !s.track(conn, true) {
		return
	}
	defer s.track(conn, false)

	buf := make([]byte, 4096)
	for {
		if err := conn.SetDeadline(time.Now().Add(echoIdle)); err != nil {
			return
		}
		n, err := conn.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// track adds conn to the open connections, or removes it. It reports false
// when the server is closed and conn must not be served.
func (s *echoServer) track(conn net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, conn)
		return true
	}
	if s.closed {
		return false
	}
	s.conns[conn] = true
	return true
}

// close stops accepting, hangs up on every client and waits for the
// server's goroutines.
func (s *echoServer) close() error {
	err := s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for conn := range s.conns {
		conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// answerFunc returns the status code and body of the next /healthz reply.
type answerFunc func() (code int, body string)

// fixedAnswer returns an answerFunc that always answers code and body.
func fixedAnswer(code int, body string) answerFunc {
	return func() (int, string) { return code, body }
}

// healthz returns a handler that answers GET /healthz with answer and
// every other request with 404.
func healthz(answer answerFunc) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		code, body := answer()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		io.WriteString(w, body)
	})
	return mux
}

// httpBackend returns a backendStart for an HTTP server whose /healthz
// answers with answer; with a certificate it serves HTTPS.
func httpBackend(answer answerFunc, cert *tls.Certificate) backendStart {
	return func() (netip.AddrPort, func() error, error) {
		return startHTTP(healthz(answer), cert)
	}
}

// startHTTP serves h on an ephemeral loopback port, over TLS when cert is
// not nil.
func startHTTP(
	h http.Handler, cert *tls.Certificate,
) (netip.AddrPort, func() error, error) {
	ln, err := listenTCP()
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	addr := addrOf(ln.Addr())
	if cert != nil {
		ln = tls.NewListener(ln, &tls.Config{
			Certificates: []tls.Certificate{*cert},
			MinVersion:   tls.VersionTLS12,
		})
	}

	// NOTE: the servers' own log is discarded: a probe that hangs up
	// mid-handshake is part of the demo, and the checks report it.
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: backendReadHeader,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	stop := func() error {
		err := srv.Close()
		<-done
		return err
	}
	return addr, stop, nil
}

// flapper answers 200 for one period, then 500 for the next, and so on,
// counting periods from start. It is safe for concurrent use.
type flapper struct {
	start  time.Time
	period time.Duration
	now    func() time.Time
}

// newFlapper returns a flapper whose first period starts now.
func newFlapper(period time.Duration) *flapper {
	return &flapper{start: time.Now(), period: period, now: time.Now}
}

// healthy reports whether the flapper is in a healthy period.
func (f *flapper) healthy() bool {
	return (f.now().Sub(f.start)/f.period)%2 == 0
}

// answer is the flapper's answerFunc.
func (f *flapper) answer() (int, string) {
	if f.healthy() {
		return http.StatusOK, "ok\n"
	}
	return http.StatusInternalServerError, "flapping\n"
}

// selfSignedCert makes a certificate for 127.0.0.1 that is valid for a
// day and signed by its own key, as httptest's is.
func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "hcdemo"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// startDNS starts a DNS server that answers with answerDNS over UDP and
// TCP on the same loopback port.
func startDNS() (netip.AddrPort, func() error, error) {
	pc, ln, err := listenDNS()
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	h := dns.HandlerFunc(answerDNS)
	stopUDP, err := serveDNS(&dns.Server{PacketConn: pc, Handler: h})
	if err != nil {
		pc.Close()
		ln.Close()
		return netip.AddrPort{}, nil, err
	}
	stopTCP, err := serveDNS(&dns.Server{Listener: ln, Handler: h})
	if err != nil {
		ln.Close()
		return netip.AddrPort{}, nil, errors.Join(err, stopUDP())
	}
	stop := func() error { return errors.Join(stopTCP(), stopUDP()) }
	return addrOf(pc.LocalAddr()), stop, nil
}

// dnsListenAttempts bounds how often listenDNS tries for a port that is
// free for both UDP and TCP.
const dnsListenAttempts = 10

// listenDNS binds an ephemeral UDP port of 127.0.0.1 and the TCP port of
// the same number.
func listenDNS() (net.PacketConn, net.Listener, error) {
	var err error
	for range dnsListenAttempts {
		var pc net.PacketConn
		pc, err = net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		var ln net.Listener
		ln, err = net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
	}
	return nil, nil, fmt.Errorf("no port free for both UDP and TCP: %w", err)
}

// serveDNS starts srv and waits until it serves. The returned stop shuts
// srv down and waits for it.
func serveDNS(srv *dns.Server) (stop func() error, err error) {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		return nil, err
	}

	stop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), backendStop)
		defer cancel()
		err := srv.ShutdownContext(ctx)
		<-done
		return err
	}
	return stop, nil
}

// answerDNS answers A queries for demoName with demoAddr, other types for
// it with no records, and every other name with NXDOMAIN.
func answerDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	switch {
	case len(r.Question) != 1 ||
		!strings.EqualFold(r.Question[0].Name, demoName):
		m.Rcode = dns.RcodeNameError
	case r.Question[0].Qtype == dns.TypeA:
		m.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{
				Name:   r.Question[0].Name,
				Rrtype: dns.TypeA,
				Class:  dns.ClassINET,
				Ttl:    60,
			},
			A: net.IP(demoAddr.AsSlice()),
		}}
	}
	// NOTE: a reply that cannot be written is the client's problem; the
	// check that sent the query reports it.
	w.WriteMsg(m)
}
