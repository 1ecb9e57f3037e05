package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lbhealth/hcsupervisor/messages"
)

const (
	// cfgTimeout is the Timeout of test configs: long, so that a test
	// probe ends by the context it is given, which is what Probe promises.
	cfgTimeout = 30 * time.Second
	// probeTimeout bounds the context of a probe expected to finish.
	probeTimeout = 10 * time.Second
	// silentTimeout bounds the context of a probe of a silent server.
	silentTimeout = 300 * time.Millisecond
	// lateness is how long after its context's deadline a probe may
	// return.
	lateness = 2 * time.Second
)

func TestNewUnsupported(t *testing.T) {
	for _, checker := range []messages.CheckerType{"smtp", "ping", ""} {
		t.Run(string(checker), func(t *testing.T) {
			cfg := &messages.Config{Checker: checker}
			p, err := New(cfg)
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("New(%q) error = %v, want ErrUnsupported", checker, err)
			}
			if p != nil {
				t.Errorf("New(%q) = %v, want nil", checker, p)
			}
		})
	}
}

func TestNewSupported(t *testing.T) {
	ap := netip.MustParseAddrPort("127.0.0.1:1")
	for _, checker := range messages.CheckerTypes {
		t.Run(string(checker), func(t *testing.T) {
			cfg := testConfig(t, checker, ap, nil)
			if _, err := New(&cfg); err != nil {
				t.Errorf("New(%q) error = %v, want nil", checker, err)
			}
		})
	}
}

// TestConfigTimeoutBounds checks that a probe whose context has no
// deadline still ends by the config's Timeout.
func TestConfigTimeoutBounds(t *testing.T) {
	checkNoLeaks(t)
	srv := serveTCP(t, listenTCP(t, "tcp4", "127.0.0.1:0"), drain)
	cfg := testConfig(t, messages.CheckerTCP, srv.addr, func(c *messages.Config) {
		c.Receive = "hello"
		c.Timeout = silentTimeout
	})
	p := mustNew(t, &cfg)

	start := time.Now()
	got := p.Probe(context.Background())
	checkResult(t, got, false, "read timed out")
	if elapsed := time.Since(start); elapsed > silentTimeout+lateness {
		t.Errorf("probe took %v, want at most %v", elapsed, silentTimeout+lateness)
	}
	srv.waitClosed(t)
}

// TestConcurrentUse runs one prober of each kind from several goroutines,
// for the race detector.
func TestConcurrentUse(t *testing.T) {
	tcpAddr := serveTCP(t, listenTCP(t, "tcp4", "127.0.0.1:0"), drain).addr
	httpAddr := startHTTP(t)
	dnsAddr := startDNS(t, newTestZone())
	cfgs := []messages.Config{
		testConfig(t, messages.CheckerTCP, tcpAddr, nil),
		testConfig(t, messages.CheckerHTTP, httpAddr, func(c *messages.Config) {
			c.Path = "/ok"
		}),
		testConfig(t, messages.CheckerDNS, dnsAddr, func(c *messages.Config) {
			c.Query = "a.example.test"
		}),
	}
	for _, cfg := range cfgs {
		t.Run(string(cfg.Checker), func(t *testing.T) {
			p := mustNew(t, &cfg)
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(t.Context(), probeTimeout)
					defer cancel()
					checkResult(t, p.Probe(ctx), true, "")
				})
			}
			wg.Wait()
		})
	}
}

// testConfig returns a valid config of checker against ap, with Timeout
// cfgTimeout, modified by edit (if not nil) before defaults apply.
func testConfig(
	t *testing.T, checker messages.CheckerType, ap netip.AddrPort,
	edit func(*messages.Config),
) messages.Config {
	t.Helper()
	cfg := messages.Config{
		ID:      1,
		Timeout: cfgTimeout,
		Checker: checker,
		IP:      ap.Addr(),
		Port:    int(ap.Port()),
	}
	switch checker {
	case messages.CheckerDNS:
		cfg.Query = "example.test"
	case messages.CheckerICMP:
		cfg.Port = 0
	case messages.CheckerRADIUS:
		cfg.Username, cfg.Secret = testUser, testSecret
	}
	if edit != nil {
		edit(&cfg)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config is invalid: %v", err)
	}
	return cfg
}

// mustNew returns New(cfg), failing the test on error.
func mustNew(t *testing.T, cfg *messages.Config) Prober {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg, err)
	}
	return p
}

// runProbe runs one probe of cfg under a context with the given timeout.
func runProbe(
	t *testing.T, cfg messages.Config, timeout time.Duration,
) messages.ProbeResult {
	t.Helper()
	p := mustNew(t, &cfg)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	return p.Probe(ctx)
}

// checkResult checks a result's verdict and that its message contains
// wantMsg.
func checkResult(
	t *testing.T, got messages.ProbeResult, wantSuccess bool, wantMsg string,
) {
	t.Helper()
	if got.Success != wantSuccess {
		t.Errorf("Success = %v, want %v (message %q)",
			got.Success, wantSuccess, got.Message)
	}
	if !strings.Contains(got.Message, wantMsg) {
		t.Errorf("Message = %q, want it to contain %q", got.Message, wantMsg)
	}
}

// probeSilent probes cfg under a context of silentTimeout and checks that
// the probe fails with wantMsg no later than lateness after the deadline.
func probeSilent(t *testing.T, cfg messages.Config, wantMsg string) {
	t.Helper()
	start := time.Now()
	got := runProbe(t, cfg, silentTimeout)
	elapsed := time.Since(start)
	checkResult(t, got, false, wantMsg)
	if elapsed > silentTimeout+lateness {
		t.Errorf("probe took %v, want at most %v",
			elapsed, silentTimeout+lateness)
	}
}

// probeCancelled probes cfg under a long context that is cancelled once
// accepted is closed (or receives), checks the probe fails promptly
// with a message saying it was cancelled, and returns its result.
func probeCancelled(
	t *testing.T, cfg messages.Config, accepted <-chan struct{},
) messages.ProbeResult {
	t.Helper()
	p := mustNew(t, &cfg)
	ctx, cancel := context.WithTimeout(t.Context(), cfgTimeout)
	defer cancel()

	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-accepted:
			cancel()
		case <-done:
		}
	}()

	start := time.Now()
	got := p.Probe(ctx)
	checkResult(t, got, false, "canceled")
	if elapsed := time.Since(start); elapsed > lateness {
		t.Errorf("cancelled probe took %v, want at most %v", elapsed, lateness)
	}
	return got
}

// checkNoLeaks makes the test fail if goroutines remain after its cleanups.
// Call it first, so that its cleanup runs last.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// waitFor polls cond until it holds, failing the test after 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listenTCP listens on a loopback address, skipping the test if address
// is ::1 and IPv6 is unavailable.
func listenTCP(t *testing.T, network, address string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil && network == "tcp6" {
		t.Skipf("cannot listen on %s: %v", address, err)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", address, err)
	}
	return ln
}

// addrPort returns the address of a loopback listener or socket.
func addrPort(t *testing.T, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatalf("parse address %s: %v", a, err)
	}
	return ap
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T, network, address string) netip.AddrPort {
	t.Helper()
	ln := listenTCP(t, network, address)
	ap := addrPort(t, ln.Addr())
	ln.Close()
	return ap
}

// drain reads the connection until the peer closes it, never answering.
func drain(c net.Conn) {
	_, _ = io.Copy(io.Discard, c)
}

// signal returns a handler that signals on accepted, without blocking, and
// then drains the connection.
func signal(accepted chan<- struct{}) func(net.Conn) {
	return func(c net.Conn) {
		select {
		case accepted <- struct{}{}:
		default:
		}
		drain(c)
	}
}

// serveTCP serves ln with handle, one goroutine per connection. Cleanup
// closes ln and every connection and waits for the handlers to return.
func serveTCP(t *testing.T, ln net.Listener, handle func(net.Conn)) *tcpServer {
	t.Helper()
	s := &tcpServer{
		addr:   addrPort(t, ln.Addr()),
		ln:     ln,
		handle: handle,
		conns:  map[net.Conn]bool{},
	}
	s.wg.Go(s.serve)
	t.Cleanup(s.close)
	return s
}

// tcpServer is a loopback server for tests.
type tcpServer struct {
	addr   netip.AddrPort
	ln     net.Listener
	handle func(net.Conn)
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool // connections whose handler runs
}

// serve accepts until the listener closes.
func (s *tcpServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Go(func() {
			s.handle(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		})
	}
}

// active returns how many connections are being handled.
func (s *tcpServer) active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// waitClosed waits until the server has no connection left open by its
// client; with a draining handler, that shows the probe's connection was
// closed rather than left to a goroutine outliving the probe.
func (s *tcpServer) waitClosed(t *testing.T) {
	t.Helper()
	waitFor(t, "the client to close its connections", func() bool {
		return s.active() == 0
	})
}

// close stops the server and waits for its goroutines.
func (s *tcpServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// selfSignedCert returns a certificate for 127.0.0.1 and ::1 that no
// system root trusts.
func selfSignedCert(t *testing.T) tls.Certificate {
	t.Helper()
	cert, key := makeCert(t, leafTemplate("probe test"), nil, nil)
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key}
}

// testPKI is a certificate authority made for one test, and a server
// certificate it issued for 127.0.0.1, ::1 and backend.example.test.
type testPKI struct {
	roots *x509.CertPool // holds the authority alone
	leaf  tls.Certificate
}

// newTestPKI returns a fresh testPKI.
func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "probe test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	ca, caKey := makeCert(t, caTmpl, nil, nil)
	tmpl := leafTemplate("probe test backend")
	tmpl.SerialNumber = big.NewInt(2)
	tmpl.DNSNames = []string{"backend.example.test"}
	leaf, key := makeCert(t, tmpl, ca, caKey)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return testPKI{
		roots: roots,
		leaf:  tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key},
	}
}

// leafTemplate returns the template of a server certificate for
// 127.0.0.1 and ::1, valid for an hour either side of now.
func leafTemplate(name string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
}

// makeCert creates a certificate from tmpl with a fresh key, signed by
// parent with parentKey, or self-signed if parent is nil.
func makeCert(
	t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey,
) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent,
		&key.PublicKey, parentKey)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return cert, key
}
