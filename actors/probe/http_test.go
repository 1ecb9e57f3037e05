package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"

	"github.com/lbhealth/hcsupervisor/messages"
)

// testMux serves the paths the HTTP tests probe.
func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello world")
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/host", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Host)
	})
	mux.HandleFunc("/head-only", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	return mux
}

// startHTTP starts an httptest server of testMux on 127.0.0.1.
func startHTTP(t *testing.T) netip.AddrPort {
	t.Helper()
	srv := httptest.NewServer(testMux())
	t.Cleanup(srv.Close)
	return addrPort(t, srv.Listener.Addr())
}

func TestHTTP(t *testing.T) {
	ap := startHTTP(t)
	prefix := func(method string) string {
		return fmt.Sprintf("HTTP %s to %s; ", method, ap)
	}
	tests := []struct {
		name        string
		method      string
		path        string
		host        string
		codes       []int
		response    string
		wantSuccess bool
		wantMsg     string
	}{
		{
			name:        "expected code",
			path:        "/ok",
			wantSuccess: true,
			wantMsg:     prefix("GET") + "got 200 OK",
		},
		{
			name:    "unexpected code",
			path:    "/missing",
			wantMsg: prefix("GET") + "got 404 Not Found; want 200",
		},
		{
			name:        "one of several codes",
			path:        "/missing",
			codes:       []int{200, 404},
			wantSuccess: true,
			wantMsg:     prefix("GET") + "got 404 Not Found",
		},
		{
			name:    "none of several codes",
			path:    "/missing",
			codes:   []int{200, 204},
			wantMsg: "got 404 Not Found; want 200 or 204",
		},
		{
			name:        "body starts with response",
			path:        "/ok",
			response:    "hello",
			wantSuccess: true,
			wantMsg:     prefix("GET") + "got 200 OK",
		},
		{
			name:        "body is response",
			path:        "/ok",
			response:    "hello world",
			wantSuccess: true,
			wantMsg:     prefix("GET") + "got 200 OK",
		},
		{
			name:     "body differs",
			path:     "/ok",
			response: "howdy",
			wantMsg:  `got 200 OK; unexpected response - "hello"`,
		},
		{
			name:     "body shorter than response",
			path:     "/ok",
			response: "hello world, and more",
			wantMsg:  "got 200 OK; failed to read HTTP response: unexpected EOF",
		},
		{
			name:     "empty body",
			path:     "/empty",
			response: "x",
			wantMsg:  "got 200 OK; failed to read HTTP response: EOF",
		},
		{
			name:        "HEAD",
			method:      http.MethodHead,
			path:        "/head-only",
			wantSuccess: true,
			wantMsg:     prefix("HEAD") + "got 200 OK",
		},
		{
			name:    "GET where only HEAD is allowed",
			path:    "/head-only",
			wantMsg: "got 405 Method Not Allowed",
		},
		{
			name:        "Host header sent",
			path:        "/host",
			host:        "www.example.test",
			response:    "www.example.test",
			wantSuccess: true,
		},
		{
			name:        "Host header defaults to ip:port",
			path:        "/host",
			response:    ap.String(),
			wantSuccess: true,
		},
		{
			name:        "redirect evaluated, not followed",
			path:        "/redirect",
			codes:       []int{302},
			wantSuccess: true,
			wantMsg:     prefix("GET") + "got 302 Found",
		},
		{
			name:    "redirect is not success by itself",
			path:    "/redirect",
			wantMsg: "got 302 Found; want 200",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, messages.CheckerHTTP, ap, func(c *messages.Config) {
				c.Method, c.Path, c.Host = tc.method, tc.path, tc.host
				c.ExpectedCodes, c.Response = tc.codes, tc.response
			})

			got := runProbe(t, cfg, probeTimeout)
			checkResult(t, got, tc.wantSuccess, tc.wantMsg)
		})
	}
}

func TestHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(testMux())
	t.Cleanup(srv.Close)
	ap := addrPort(t, srv.Listener.Addr())
	tests := []struct {
		name        string
		verify      bool
		wantSuccess bool
		wantMsg     string
	}{
		{
			name:        "without verification",
			wantSuccess: true,
			wantMsg:     fmt.Sprintf("HTTP GET to %s; got 200 OK", ap),
		},
		{
			name:    "verification fails",
			verify:  true,
			wantMsg: "certificate signed by unknown authority",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, messages.CheckerHTTP, ap, func(c *messages.Config) {
				c.Path, c.Secure, c.TLSVerify = "/ok", true, tc.verify
			})

			got := runProbe(t, cfg, probeTimeout)
			checkResult(t, got, tc.wantSuccess, tc.wantMsg)
		})
	}
}

// TestHTTPSServerName checks the name sent in the TLS ClientHello: the Host
// header's host when set, else none for the IP literal.
func TestHTTPSServerName(t *testing.T) {
	tests := []struct {
		host string
		want string
	}{
		{host: "", want: ""},
		{host: "www.example.test", want: "www.example.test"},
		{host: "www.example.test:8443", want: "www.example.test"},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			srv := httptest.NewUnstartedServer(testMux())
			srv.TLS = &tls.Config{
				GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
					mu.Lock()
					defer mu.Unlock()
					got = append(got, h.ServerName)
					return nil, nil
				},
			}
			srv.StartTLS()
			t.Cleanup(srv.Close)
			ap := addrPort(t, srv.Listener.Addr())
			cfg := testConfig(t, messages.CheckerHTTP, ap, func(c *messages.Config) {
				c.Path, c.Secure, c.Host = "/ok", true, tc.host
			})

			checkResult(t, runProbe(t, cfg, probeTimeout), true, "got 200 OK")
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("server names = %q, want [%q]", got, tc.want)
			}
		})
	}
}

func TestTLSServerName(t *testing.T) {
	tests := []struct {
		ip   string
		host string
		want string
	}{
		{ip: "192.0.2.1", want: "192.0.2.1"},
		{ip: "2001:db8::1", want: "2001:db8::1"},
		{ip: "192.0.2.1", host: "www.example.test", want: "www.example.test"},
		{ip: "192.0.2.1", host: "www.example.test:443", want: "www.example.test"},
		{ip: "192.0.2.1", host: "[2001:db8::2]:443", want: "2001:db8::2"},
		{ip: "192.0.2.1", host: "[2001:db8::2]", want: "2001:db8::2"},
	}
	for _, tc := range tests {
		t.Run(tc.ip+" "+tc.host, func(t *testing.T) {
			cfg := &messages.Config{IP: netip.MustParseAddr(tc.ip), Host: tc.host}
			if got := tlsServerName(cfg); got != tc.want {
				t.Errorf("tlsServerName() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHTTPRefused(t *testing.T) {
	ap := closedPort(t, "tcp4", "127.0.0.1:0")
	cfg := testConfig(t, messages.CheckerHTTP, ap, nil)

	got := runProbe(t, cfg, probeTimeout)
	checkResult(t, got, false, fmt.Sprintf("HTTP GET to %s; request failed: ", ap))
	checkResult(t, got, false, "connection refused")
}

func TestHTTPInvalidMethod(t *testing.T) {
	ap := netip.MustParseAddrPort("127.0.0.1:1")
	cfg := testConfig(t, messages.CheckerHTTP, ap, nil)
	// Bypass validation, as a config from a buggy caller might: Seesaw
	// panicked here.
	cfg.Method = "BAD METHOD"

	got := runProbe(t, cfg, probeTimeout)
	checkResult(t, got, false, "; invalid request: ")
}

// TestHTTPInvalidPath covers a path that validation rejects, reaching the
// prober from a caller that skipped validation.
func TestHTTPInvalidPath(t *testing.T) {
	ap := netip.MustParseAddrPort("127.0.0.1:1")
	cfg := testConfig(t, messages.CheckerHTTP, ap, nil)
	cfg.Path = "/%zz"

	got := runProbe(t, cfg, probeTimeout)
	checkResult(t, got, false, "HTTP GET to 127.0.0.1:1; invalid URL: ")
}

func TestHTTPIPv6(t *testing.T) {
	srv := httptest.NewUnstartedServer(testMux())
	srv.Listener.Close()
	srv.Listener = listenTCP(t, "tcp6", "[::1]:0")
	srv.Start()
	t.Cleanup(srv.Close)
	ap := addrPort(t, srv.Listener.Addr())
	cfg := testConfig(t, messages.CheckerHTTP, ap, func(c *messages.Config) {
		c.Path, c.Response = "/host", ap.String()
	})

	got := runProbe(t, cfg, probeTimeout)
	want := fmt.Sprintf("HTTP GET to [::1]:%d; got 200 OK", ap.Port())
	checkResult(t, got, true, want)
}

func TestHTTPSilentServer(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			checkNoLeaks(t)
			srv := serveTCP(t, listenTCP(t, "tcp4", "127.0.0.1:0"), drain)
			cfg := testConfig(t, messages.CheckerHTTP, srv.addr, secureIf(secure))

			probeSilent(t, cfg, "; request timed out: ")
			srv.waitClosed(t)
		})
	}
}

func TestHTTPCancel(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			checkNoLeaks(t)
			accepted := make(chan struct{}, 1)
			ln := listenTCP(t, "tcp4", "127.0.0.1:0")
			srv := serveTCP(t, ln, signal(accepted))
			cfg := testConfig(t, messages.CheckerHTTP, srv.addr, secureIf(secure))

			probeCancelled(t, cfg, accepted)
			srv.waitClosed(t)
		})
	}
}

// secureIf returns a config edit setting Secure to secure.
func secureIf(secure bool) func(*messages.Config) {
	return func(c *messages.Config) { c.Secure = secure }
}

// TestHTTPNoKeepAlive checks that every probe closes its connection, even
// with an empty body, the case in which Seesaw leaked one per probe.
func TestHTTPNoKeepAlive(t *testing.T) {
	const probes = 50
	var states connStates
	srv := httptest.NewUnstartedServer(testMux())
	srv.Config.ConnState = states.record
	srv.Start()
	t.Cleanup(srv.Close)
	ap := addrPort(t, srv.Listener.Addr())
	cfg := testConfig(t, messages.CheckerHTTP, ap, func(c *messages.Config) {
		c.Path = "/empty"
	})
	p := mustNew(t, &cfg)

	for i := range probes {
		ctx, cancel := context.WithTimeout(t.Context(), probeTimeout)
		got := p.Probe(ctx)
		cancel()
		if !got.Success {
			t.Fatalf("probe %d: %q, want success", i, got.Message)
		}
	}

	waitFor(t, "the server to see every connection closed", func() bool {
		return states.count(http.StateClosed) == probes
	})
	if got := states.count(http.StateNew); got != probes {
		t.Errorf("server saw %d connections, want %d", got, probes)
	}
	if got := states.count(http.StateIdle); got != 0 {
		t.Errorf("server saw %d idle connections, want 0", got)
	}
}

// connStates counts the connection state transitions an HTTP server saw.
type connStates struct {
	mu     sync.Mutex
	counts map[http.ConnState]int
}

// record is an http.Server ConnState hook.
func (s *connStates) record(_ net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[http.ConnState]int{}
	}
	s.counts[state]++
}

// count returns how many times the server entered state.
func (s *connStates) count(state http.ConnState) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[state]
}
