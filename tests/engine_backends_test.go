package tests

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// This file holds the loopback backends of the Engine suites that
// backends_test.go does not have: an HTTP server that counts by path,
// HTTPS, UDP and RADIUS.

// pathBackend is an HTTP server on loopback that counts requests by path
// and answers 503 on /down and 200 with httpBody elsewhere.
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
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, httpBody)
	}))
	t.Cleanup(srv.Close)
	b.addr = addrPort(t, srv.Listener.Addr())
	return b
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

// startRADIUSBackend starts a RADIUS server on loopback that accepts user
// with password and rejects everything else, with secret as its shared
// secret. It is shut down when the test ends.
func startRADIUSBackend(t testing.TB, user, password, secret string) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	handler := func(w radius.ResponseWriter, r *radius.Request) {
		code := radius.CodeAccessReject
		if rfc2865.UserName_GetString(r.Packet) == user &&
			rfc2865.UserPassword_GetString(r.Packet) == password {
			code = radius.CodeAccessAccept
		}
		w.Write(r.Response(code))
	}
	srv := &radius.PacketServer{
		Handler:      radius.HandlerFunc(handler),
		SecretSource: radius.StaticSecretSource([]byte(secret)),
		ErrorLog:     log.New(io.Discard, "", 0),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(pc)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("stopping the RADIUS server: %v", err)
		}
		// Shutdown closes only a socket Serve has taken up.
		pc.Close()
		<-served
	})
	return addrPort(t, pc.LocalAddr())
}
