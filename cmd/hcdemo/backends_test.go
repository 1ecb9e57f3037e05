package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// testProbeTimeout bounds each probe of a backend in these tests.
const testProbeTimeout = 2 * time.Second

// startTestBackends starts backends whose flapper turns every flapPeriod
// and closes them at cleanup.
func startTestBackends(t *testing.T, flapPeriod time.Duration) *backends {
	t.Helper()
	b, err := startBackends(flapPeriod)
	if err != nil {
		t.Fatalf("startBackends: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// getHealthz fetches /healthz from addr, over TLS without verification
// when secure, and returns the status code and body.
func getHealthz(t *testing.T, addr netip.AddrPort, secure bool) (int, string) {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: testProbeTimeout}
	scheme := "http"
	if secure {
		scheme = "https"
	}
	resp, err := client.Get(scheme + "://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp.StatusCode, string(body)
}

// queryA asks addr over network for the A records of name.
func queryA(t *testing.T, network string, addr netip.AddrPort, name string) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	c := &dns.Client{Net: network, Timeout: testProbeTimeout}
	r, _, err := c.Exchange(q, addr.String())
	if err != nil {
		t.Fatalf("%s query for %s: %v", network, name, err)
	}
	return r
}

func TestBackendsListenOnLoopbackOnly(t *testing.T) {
	b := startTestBackends(t, time.Hour)
	for name, addr := range map[string]netip.AddrPort{
		"Echo": b.Echo, "Refused": b.Refused, "HTTPOK": b.HTTPOK,
		"HTTPDown": b.HTTPDown, "HTTPFlap": b.HTTPFlap, "HTTPS": b.HTTPS,
		"DNS": b.DNS, "UDPEcho": b.UDPEcho, "RADIUS": b.RADIUS,
	} {
		if addr.Addr() != netip.MustParseAddr("127.0.0.1") || addr.Port() == 0 {
			t.Errorf("%s: got %v, want 127.0.0.1 and a port", name, addr)
		}
	}
}

func TestTCPBackends(t *testing.T) {
	b := startTestBackends(t, time.Hour)

	t.Run("echo", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", b.Echo.String(), testProbeTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(testProbeTimeout))
		want := "PING\r\n"
		if _, err := io.WriteString(conn, want); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		if _, err := io.ReadFull(conn, got); err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("echo: got %q, want %q", got, want)
		}
	})

	t.Run("refused", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", b.Refused.String(), testProbeTimeout)
		if err == nil {
			conn.Close()
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial: got %v, want connection refused", err)
		}
	})
}

func TestHTTPBackends(t *testing.T) {
	b := startTestBackends(t, time.Hour)
	tests := []struct {
		name     string
		addr     netip.AddrPort
		secure   bool
		wantCode int
		wantBody string
	}{
		{"ok", b.HTTPOK, false, http.StatusOK, "ok\n"},
		{"down", b.HTTPDown, false, http.StatusServiceUnavailable, "unavailable\n"},
		{"flap in its first period", b.HTTPFlap, false, http.StatusOK, "ok\n"},
		{"https", b.HTTPS, true, http.StatusOK, "ok\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := getHealthz(t, tt.addr, tt.secure)
			if code != tt.wantCode || body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q",
					code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestFlapBackendFlips(t *testing.T) {
	b := startTestBackends(t, 50*time.Millisecond)
	seen := map[int]bool{}
	waitFor(t, "the flapper to answer both 200 and 500", func() bool {
		code, _ := getHealthz(t, b.HTTPFlap, false)
		seen[code] = true
		return seen[http.StatusOK] && seen[http.StatusInternalServerError]
	})
	if len(seen) != 2 {
		t.Errorf("flapper answered %v, want only 200 and 500", seen)
	}
}

func TestFlapperHealthy(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		after time.Duration
		want  bool
	}{
		{0, true},
		{3999 * time.Millisecond, true},
		{4 * time.Second, false},
		{7999 * time.Millisecond, false},
		{8 * time.Second, true},
		{13 * time.Second, false},
	}
	for _, tt := range tests {
		now := start.Add(tt.after)
		f := &flapper{
			start:  start,
			period: 4 * time.Second,
			now:    func() time.Time { return now },
		}
		if got := f.healthy(); got != tt.want {
			t.Errorf("healthy() %v after start: got %v, want %v",
				tt.after, got, tt.want)
		}
	}
}

func TestDNSBackend(t *testing.T) {
	b := startTestBackends(t, time.Hour)
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			r := queryA(t, network, b.DNS, "demo.test.")
			if len(r.Answer) != 1 {
				t.Fatalf("got %d answers, want 1: %v", len(r.Answer), r)
			}
			a, ok := r.Answer[0].(*dns.A)
			if !ok || a.A.String() != demoAddr.String() {
				t.Errorf("got %v, want A %v", r.Answer[0], demoAddr)
			}

			r = queryA(t, network, b.DNS, "other.test.")
			if r.Rcode != dns.RcodeNameError {
				t.Errorf("other.test.: got rcode %s, want NXDOMAIN",
					dns.RcodeToString[r.Rcode])
			}
		})
	}
}

func TestUDPEchoBackend(t *testing.T) {
	b := startTestBackends(t, time.Hour)
	conn, err := net.DialTimeout("udp", b.UDPEcho.String(), testProbeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testProbeTimeout))
	want := "PING"
	if _, err := io.WriteString(conn, want); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 64)
	n, err := conn.Read(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(got[:n]) != want {
		t.Errorf("echo: got %q, want %q", got[:n], want)
	}
}

func TestRADIUSBackend(t *testing.T) {
	b := startTestBackends(t, time.Hour)
	tests := []struct {
		name     string
		password string
		want     radius.Code
	}{
		{"right password", radiusPassword, radius.CodeAccessAccept},
		{"wrong password", "guess", radius.CodeAccessReject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := radius.New(radius.CodeAccessRequest, []byte(radiusSecret))
			rfc2865.UserName_SetString(req, radiusUser)
			rfc2865.UserPassword_SetString(req, tt.password)
			ctx, cancel := context.WithTimeout(context.Background(),
				testProbeTimeout)
			defer cancel()
			resp, err := radius.Exchange(ctx, req, b.RADIUS.String())
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if resp.Code != tt.want {
				t.Errorf("got %v, want %v", resp.Code, tt.want)
			}
		})
	}
}
