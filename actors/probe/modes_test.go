package probe

import (
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
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
	// The largest mark an int holds: MaxMark but on 32-bit targets.
	largest := min(messages.MaxMark, math.MaxInt)
	for _, mark := range []int{0, 65536, largest} {
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

// withoutNetAdminConfigs returns a config of every checker that dials,
// named, in TUN mode with mark 65536, against ap. Setting the mark comes
// before the connect, so nothing needs to listen there.
func withoutNetAdminConfigs(
	t *testing.T, ap netip.AddrPort,
) map[string]messages.Config {
	t.Helper()
	tun := func(edit func(*messages.Config)) func(*messages.Config) {
		return func(c *messages.Config) {
			c.Mode, c.Mark = messages.ModeTUN, 65536
			if edit != nil {
				edit(c)
			}
		}
	}
	secure := func(c *messages.Config) { c.Secure = true }
	return map[string]messages.Config{
		"tcp":    testConfig(t, messages.CheckerTCP, ap, tun(nil)),
		"tls":    testConfig(t, messages.CheckerTCP, ap, tun(secure)),
		"http":   testConfig(t, messages.CheckerHTTP, ap, tun(nil)),
		"https":  testConfig(t, messages.CheckerHTTP, ap, tun(secure)),
		"dns":    testConfig(t, messages.CheckerDNS, ap, tun(nil)),
		"udp":    testConfig(t, messages.CheckerUDP, ap, tun(nil)),
		"radius": testConfig(t, messages.CheckerRADIUS, ap, tun(nil)),
	}
}

// wantNoNetAdmin is what a marked probe without CAP_NET_ADMIN must say.
const wantNoNetAdmin = "setting SO_MARK 65536 needs CAP_NET_ADMIN: " +
	"operation not permitted"

// TestMarkWithoutNetAdmin runs marked probes of every checker that dials
// without CAP_NET_ADMIN: each must fail with a message naming the
// capability. Capabilities belong to a thread in Linux. A prober that
// dials on the probing goroutine runs on a locked thread that dropped the
// capability and ends with its goroutine; every prober also runs in a
// helper process started without it, since the http prober's Transport
// dials on a goroutine of its own.
func TestMarkWithoutNetAdmin(t *testing.T) {
	requireNetAdmin(t)
	cfgs := withoutNetAdminConfigs(t, netip.MustParseAddrPort("127.0.0.1:9"))
	for _, name := range slices.Sorted(maps.Keys(cfgs)) {
		if cfgs[name].Checker == messages.CheckerHTTP {
			continue // dials on the Transport's goroutine
		}
		t.Run("thread/"+name, func(t *testing.T) {
			cfg := cfgs[name]
			p := mustNew(t, &cfg)
			var got messages.ProbeResult
			err := onOwnThread(func() error {
				if err := dropNetAdmin(); err != nil {
					return fmt.Errorf("dropping CAP_NET_ADMIN: %w", err)
				}
				got = p.Probe(t.Context())
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, got, false, wantNoNetAdmin)
		})
	}
	t.Run("process", testMarkWithoutNetAdminProcess)
}

// dropNetAdmin removes CAP_NET_ADMIN from the calling thread's effective
// set, and CAP_NET_RAW too, which lets Linux 5.17 and later set SO_MARK.
func dropNetAdmin() error {
	return dropCaps(unix.CAP_NET_ADMIN, unix.CAP_NET_RAW)
}
