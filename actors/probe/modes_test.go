package probe

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lbhealth/hcsupervisor/messages"
)

// TestHTTPProxy checks the request line and Host header of proxy mode:
// an absolute URI naming Host (or ip:port), sent to the target itself.
func TestHTTPProxy(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	srv := httptest.NewServer(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			lines = append(lines, r.RequestURI+" Host="+r.Host)
			mu.Unlock()
			_, _ = io.WriteString(w, "ok")
		}))
	t.Cleanup(srv.Close)
	ap := addrPort(t, srv.Listener.Addr())
	tests := []struct {
		name, host, path string
		proxy            bool
		want             string
	}{
		{"origin form", "", "/healthz", false, "/healthz Host=" + ap.String()},
		{"origin form with host", "www.example.test", "/a?b=c", false,
			"/a?b=c Host=www.example.test"},
		{"proxy", "", "/healthz", true,
			fmt.Sprintf("http://%s/healthz Host=%s", ap, ap)},
		{"proxy with host", "www.example.test", "/a%20b?q=1", true,
			"http://www.example.test/a%20b?q=1 Host=www.example.test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, messages.CheckerHTTP, ap, func(c *messages.Config) {
				c.Host, c.Path, c.Proxy, c.Response = tc.host, tc.path, tc.proxy, "ok"
			})
			checkResult(t, runProbe(t, cfg, probeTimeout), true, "got 200 OK")
			mu.Lock()
			defer mu.Unlock()
			if got := lines[len(lines)-1]; got != tc.want {
				t.Errorf("request = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestTCPTLSServerName checks that tcp with secure sends Host as SNI.
func TestTCPTLSServerName(t *testing.T) {
	names := make(chan string, 1)
	cfgTLS := &tls.Config{
		Certificates: []tls.Certificate{selfSignedCert(t)},
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			names <- h.ServerName
			return nil, nil
		},
	}
	ln := tls.NewListener(listenTCP(t, "tcp4", "127.0.0.1:0"), cfgTLS)
	srv := serveTCP(t, ln, func(c net.Conn) {
		_ = c.(*tls.Conn).Handshake()
	})
	cfg := testConfig(t, messages.CheckerTCP, srv.addr, func(c *messages.Config) {
		c.Secure, c.Host = true, "backend.example.test"
	})
	checkResult(t, runProbe(t, cfg, probeTimeout), true, "TCP connect to")
	if got := <-names; got != "backend.example.test" {
		t.Errorf("server name = %q, want backend.example.test", got)
	}
}

// soMark returns the SO_MARK of the socket behind c.
func soMark(t *testing.T, c syscall.Conn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatalf("SyscallConn: %v", err)
	}
	var mark int
	var serr error
	err = rc.Control(func(fd uintptr) {
		mark, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK)
	})
	if err != nil || serr != nil {
		t.Fatalf("getsockopt SO_MARK: %v, %v", err, serr)
	}
	return mark
}

// requireNetAdmin skips the test unless the process may set socket
// marks.
func requireNetAdmin(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("setting SO_MARK needs CAP_NET_ADMIN: run as root")
	}
}

// TestDialerMark checks that the dialer of a marked probe marks its TCP
// and UDP sockets, and that an unmarked one leaves them alone.
func TestDialerMark(t *testing.T) {
	requireNetAdmin(t)
	ln := listenTCP(t, "tcp4", "127.0.0.1:0")
	serveTCP(t, ln, drain)
	udp := serveUDP(t, "udp4", "127.0.0.1:0", udpPong)
	for _, mark := range []int{0, 65536, messages.MaxMark} {
		d := newDialer(mark, false)
		for _, tc := range []struct{ network, addr string }{
			{"tcp", ln.Addr().String()},
			{"udp", udp.String()},
		} {
			c, err := d.DialContext(t.Context(), tc.network, tc.addr)
			if err != nil {
				t.Fatalf("dial %s with mark %d: %v", tc.network, mark, err)
			}
			got := uint32(soMark(t, c.(syscall.Conn)))
			c.Close()
			if got != uint32(mark) {
				t.Errorf("%s socket: SO_MARK = %d, want %d", tc.network, got, mark)
			}
		}
	}
}

// TestMarkedProbes runs a DSR probe of each socket checker against
// loopback servers: with no policy route, the mark changes nothing here,
// so each must succeed.
func TestMarkedProbes(t *testing.T) {
	requireNetAdmin(t)
	tcpAddr := serveTCP(t, listenTCP(t, "tcp4", "127.0.0.1:0"), drain).addr
	udpAddr := serveUDP(t, "udp4", "127.0.0.1:0", udpPong)
	httpAddr := startHTTP(t)
	dnsAddr := startDNS(t, newTestZone())
	_, radiusTarget := startRADIUS(t, "udp4", "127.0.0.1:0", testPassword)
	dsr := func(c *messages.Config) { c.Mode, c.Mark = messages.ModeDSR, 65536 }
	cfgs := []messages.Config{
		testConfig(t, messages.CheckerTCP, tcpAddr, dsr),
		testConfig(t, messages.CheckerUDP, udpAddr, func(c *messages.Config) {
			dsr(c)
			c.Send = "ping"
		}),
		testConfig(t, messages.CheckerHTTP, httpAddr, func(c *messages.Config) {
			dsr(c)
			c.Path = "/ok"
		}),
		testConfig(t, messages.CheckerDNS, dnsAddr, func(c *messages.Config) {
			dsr(c)
			c.Query = "a.example.test"
		}),
		testConfig(t, messages.CheckerRADIUS, netipZero, func(c *messages.Config) {
			dsr(c)
			radiusTarget(c)
		}),
	}
	for _, cfg := range cfgs {
		t.Run(string(cfg.Checker), func(t *testing.T) {
			checkResult(t, runProbe(t, cfg, probeTimeout), true, "")
		})
	}
}

// TestMarkWithoutNetAdmin runs marked probes on a thread without
// CAP_NET_ADMIN: each must fail with a message naming the capability.
// Capabilities belong to a thread in Linux, so the test drops it on a
// locked thread that ends with its goroutine.
func TestMarkWithoutNetAdmin(t *testing.T) {
	requireNetAdmin(t)
	tcpAddr := serveTCP(t, listenTCP(t, "tcp4", "127.0.0.1:0"), drain).addr
	udpAddr := serveUDP(t, "udp4", "127.0.0.1:0", udpPong)
	tun := func(c *messages.Config) { c.Mode, c.Mark = messages.ModeTUN, 65536 }
	cfgs := []messages.Config{
		testConfig(t, messages.CheckerTCP, tcpAddr, tun),
		testConfig(t, messages.CheckerUDP, udpAddr, tun),
	}
	for _, cfg := range cfgs {
		t.Run(string(cfg.Checker), func(t *testing.T) {
			p := mustNew(t, &cfg)
			done := make(chan messages.ProbeResult)
			go func() {
				// Never unlocked: the thread ends with the goroutine.
				runtime.LockOSThread()
				if err := dropNetAdmin(); err != nil {
					t.Errorf("drop CAP_NET_ADMIN: %v", err)
				}
				done <- p.Probe(t.Context())
			}()
			checkResult(t, <-done, false,
				"setting SO_MARK 65536 needs CAP_NET_ADMIN: operation not permitted")
		})
	}
}

// dropNetAdmin removes CAP_NET_ADMIN from the calling thread's effective
// set, and CAP_NET_RAW too, which lets Linux 5.17 and later set SO_MARK.
func dropNetAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[0].Effective &^= 1<<unix.CAP_NET_ADMIN | 1<<unix.CAP_NET_RAW
	return unix.Capset(&hdr, &data[0])
}
