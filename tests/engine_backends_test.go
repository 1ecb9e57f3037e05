package tests

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
)

// This file holds the loopback backends of the Engine suites that
// backends_test.go does not have: an HTTP server that counts by path,
// HTTPS, UDP and RADIUS.

// vhost is the virtual host a pathBackend serves /vhost and /proxied
// for.
const vhost = "www.example.test"

// pathBackend is an HTTP server on loopback that counts requests by path
// and answers 503 on /down, and 200 with httpBody elsewhere but on two
// paths that answer 421 Misdirected Request unless the request is right:
// /vhost wants the Host header vhost, and /proxied also the request URI
// in the absolute form a client sends a proxy, http://<vhost>/proxied.
type pathBackend struct {
	addr netip.AddrPort

	mu     sync.Mutex
	counts map[string]int
}

// startPathBackend starts a pathBackend; it is closed when the test ends.
func startPathBackend(t testing.TB) *pathBackend {
	t.Helper()
	b := &pathBackend{counts: make(map[string]int)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.counts[r.URL.Path]++
		b.mu.Unlock()
		if code := pathCode(r); code != http.StatusOK {
			w.WriteHeader(code)
		}
		io.WriteString(w, httpBody)
	}))
	t.Cleanup(srv.Close)
	b.addr = addrPort(t, srv.Listener.Addr())
	return b
}

// pathCode returns the status code a pathBackend answers r with.
func pathCode(r *http.Request) int {
	switch r.URL.Path {
	case "/down":
		return http.StatusServiceUnavailable
	case "/vhost":
		if r.Host != vhost {
			return http.StatusMisdirectedRequest
		}
	case "/proxied":
		if r.Host != vhost || r.RequestURI != "http://"+vhost+"/proxied" {
			return http.StatusMisdirectedRequest
		}
	}
	return http.StatusOK
}

// count returns how many requests for path the backend answered.
func (b *pathBackend) count(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.counts[path]
}

// startTLSBackend starts an HTTPS server on loopback with a self-signed
// certificate, answering 200 with httpBody. It is closed when the test
// ends.
func startTLSBackend(t testing.TB) netip.AddrPort {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(
		func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, httpBody) }))
	// A TCP check's handshake without a request is not worth a log line.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return addrPort(t, srv.Listener.Addr())
}

// udpReply is what startUDPBackend answers every datagram with.
const udpReply = "pong"

// startUDPBackend starts a UDP server on loopback that answers every
// datagram with udpReply. It is closed when the test ends.
func startUDPBackend(t testing.TB) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(udpReply), from)
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return addrPort(t, pc.LocalAddr())
}
