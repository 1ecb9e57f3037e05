package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// reply returns a handler that writes s and closes the connection.
func reply(s string) func(net.Conn) {
	return func(c net.Conn) {
		_, _ = io.WriteString(c, s)
	}
}

// pong answers the line "PING\r\n" with "+PONG\r\n" and anything else
// with "-ERR\r\n", so a test can tell what the probe sent.
func pong(c net.Conn) {
	line, _ := bufio.NewReader(c).ReadString('\n')
	if line == "PING\r\n" {
		_, _ = io.WriteString(c, "+PONG\r\n")
		return
	}
	_, _ = io.WriteString(c, "-ERR\r\n")
}

func TestTCP(t *testing.T) {
	tests := []struct {
		name        string
		handle      func(net.Conn)
		send        string
		receive     string
		wantSuccess bool
		wantMsg     string // after "TCP connect to ip:port"
	}{
		{
			name:        "connect",
			handle:      drain,
			wantSuccess: true,
		},
		{
			name:        "send only",
			handle:      drain,
			send:        "hello\n",
			wantSuccess: true,
		},
		{
			name:        "reply starts with receive",
			handle:      reply("foo\n"),
			receive:     "foo",
			wantSuccess: true,
		},
		{
			name:    "reply shorter than receive",
			handle:  reply("foo"),
			receive: "foo\n",
			wantMsg: "; read failed: unexpected EOF",
		},
		{
			name:    "unexpected reply",
			handle:  reply("abc"),
			receive: "foo",
			wantMsg: `; unexpected response - "abc"`,
		},
		{
			name:        "send and receive",
			handle:      pong,
			send:        "PING\r\n",
			receive:     "+PONG",
			wantSuccess: true,
		},
		{
			name:    "send and wrong reply",
			handle:  pong,
			send:    "PONG\r\n",
			receive: "+PONG",
			wantMsg: `; unexpected response - "-ERR\r"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln := listenTCP(t, "tcp4", "127.0.0.1:0")
			ap := serveTCP(t, ln, tc.handle).addr
			cfg := testConfig(t, messages.CheckerTCP, ap, func(c *messages.Config) {
				c.Send, c.Receive = tc.send, tc.receive
			})

			got := runProbe(t, cfg, probeTimeout)
			want := "TCP connect to " + ap.String() + tc.wantMsg
			checkResult(t, got, tc.wantSuccess, want)
			if tc.wantSuccess && got.Message != want {
				t.Errorf("Message = %q, want %q", got.Message, want)
			}
		})
	}
}

func TestTCPRefused(t *testing.T) {
	ap := closedPort(t, "tcp4", "127.0.0.1:0")
	cfg := testConfig(t, messages.CheckerTCP, ap, nil)

	got := runProbe(t, cfg, probeTimeout)
	checkResult(t, got, false, "; connect failed: ")
	checkResult(t, got, false, "connection refused")
}

func TestTCPIPv6(t *testing.T) {
	ap := serveTCP(t, listenTCP(t, "tcp6", "[::1]:0"), reply("hi\n")).addr
	cfg := testConfig(t, messages.CheckerTCP, ap, func(c *messages.Config) {
		c.Receive = "hi"
	})

	got := runProbe(t, cfg, probeTimeout)
	want := fmt.Sprintf("TCP connect to [::1]:%d", ap.Port())
	checkResult(t, got, true, want)
}

func TestTCPSilentServer(t *testing.T) {
	checkNoLeaks(t)
	srv := serveTCP(t, listenTCP(t, "tcp4", "127.0.0.1:0"), drain)
	cfg := testConfig(t, messages.CheckerTCP, srv.addr, func(c *messages.Config) {
		c.Send, c.Receive = "hello\n", "hello"
	})

	probeSilent(t, cfg, "; read timed out: ")
	srv.waitClosed(t)
}

func TestTCPCancel(t *testing.T) {
	checkNoLeaks(t)
	accepted := make(chan struct{}, 1)
	srv := serveTCP(t, listenTCP(t, "tcp4", "127.0.0.1:0"), signal(accepted))
	cfg := testConfig(t, messages.CheckerTCP, srv.addr, func(c *messages.Config) {
		c.Receive = "hello"
	})

	probeCancelled(t, cfg, accepted)
	srv.waitClosed(t)
}

func TestTCPTLS(t *testing.T) {
	cert := selfSignedCert(t)
	tests := []struct {
		name        string
		verify      bool
		receive     string
		wantSuccess bool
		wantMsg     string
	}{
		{
			name:        "handshake without verification",
			wantSuccess: true,
		},
		{
			name:        "receive without verification",
			receive:     "hello",
			wantSuccess: true,
		},
		{
			name:    "verification fails",
			verify:  true,
			wantMsg: "; TLS handshake failed: ",
		},
		{
			name:    "verification names the unknown authority",
			verify:  true,
			wantMsg: "certificate signed by unknown authority",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln := tls.NewListener(listenTCP(t, "tcp4", "127.0.0.1:0"),
				&tls.Config{Certificates: []tls.Certificate{cert}})
			ap := serveTCP(t, ln, helloTLS).addr
			cfg := testConfig(t, messages.CheckerTCP, ap, func(c *messages.Config) {
				c.Secure, c.TLSVerify, c.Receive = true, tc.verify, tc.receive
			})

			got := runProbe(t, cfg, probeTimeout)
			checkResult(t, got, tc.wantSuccess, tc.wantMsg)
			checkResult(t, got, tc.wantSuccess, "TCP connect to "+ap.String())
		})
	}
}

// TestTLSVerifyTrusted runs tcp and https probes with tls_verify against
// a server whose certificate a test authority issued, with the prober
// told to trust that authority: the handshake must succeed when the
// certificate names the server (its IP, or the Host given) and fail when
// it does not.
func TestTLSVerifyTrusted(t *testing.T) {
	pki := newTestPKI(t)
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{pki.leaf}}
	tcpAddr := serveTCP(t, tls.NewListener(
		listenTCP(t, "tcp4", "127.0.0.1:0"), tlsCfg), helloTLS).addr
	srv := httptest.NewUnstartedServer(testMux())
	srv.TLS = tlsCfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	httpsAddr := addrPort(t, srv.Listener.Addr())

	tests := []struct {
		name, host  string
		wantSuccess bool
		wantMsg     string
	}{
		{"ip literal", "", true, ""},
		{"host named", "backend.example.test", true, ""},
		{"host not named", "other.example.test", false,
			", not other.example.test"},
	}
	checkers := []struct {
		checker messages.CheckerType
		ap      netip.AddrPort
		okMsg   string
	}{
		{messages.CheckerTCP, tcpAddr, "TCP connect to"},
		{messages.CheckerHTTP, httpsAddr, "got 200 OK"},
	}
	for _, ck := range checkers {
		for _, tc := range tests {
			t.Run(string(ck.checker)+"/"+tc.name, func(t *testing.T) {
				cfg := testConfig(t, ck.checker, ck.ap, func(c *messages.Config) {
					c.Secure, c.TLSVerify, c.Host = true, true, tc.host
					if ck.checker == messages.CheckerHTTP {
						c.Path = "/ok"
					} else {
						c.Receive = "hello"
					}
				})
				p := trusting(t, &cfg, pki.roots)
				ctx, cancel := context.WithTimeout(t.Context(), probeTimeout)
				defer cancel()

				want := tc.wantMsg
				if tc.wantSuccess {
					want = ck.okMsg
				}
				checkResult(t, p.Probe(ctx), tc.wantSuccess, want)
			})
		}
	}
}

// trusting returns the prober of cfg, a secure tcp or http config with
// tls_verify, made to verify against roots instead of the system's.
//
// NOTE: a test sets the roots in the built prober rather than through
// SSL_CERT_FILE, which crypto/x509 reads once per process.
func trusting(t *testing.T, cfg *messages.Config, roots *x509.CertPool) Prober {
	t.Helper()
	p := mustNew(t, cfg)
	var tc *tls.Config
	switch p := p.(type) {
	case *tcpProber:
		tc = p.tls
	case *httpProber:
		tc = p.client.Transport.(*http.Transport).TLSClientConfig
	}
	if tc == nil || tc.InsecureSkipVerify {
		t.Fatalf("the prober of %v does not verify certificates", cfg)
	}
	tc.RootCAs = roots
	return p
}

// helloTLS completes the server's TLS handshake and says hello.
func helloTLS(c net.Conn) {
	if err := c.(*tls.Conn).Handshake(); err != nil {
		return
	}
	_, _ = io.WriteString(c, "hello\n")
	drain(c)
}

// TestTCPTLSSilentServer checks that a handshake with a server that never
// answers is bounded by the context, Seesaw's goroutine and fd leak.
func TestTCPTLSSilentServer(t *testing.T) {
	checkNoLeaks(t)
	srv := serveTCP(t, listenTCP(t, "tcp4", "127.0.0.1:0"), drain)
	cfg := testConfig(t, messages.CheckerTCP, srv.addr, func(c *messages.Config) {
		c.Secure = true
	})

	probeSilent(t, cfg, "; TLS handshake timed out: ")
	srv.waitClosed(t)
}

func TestTCPTLSCancel(t *testing.T) {
	checkNoLeaks(t)
	accepted := make(chan struct{}, 1)
	srv := serveTCP(t, listenTCP(t, "tcp4", "127.0.0.1:0"), signal(accepted))
	cfg := testConfig(t, messages.CheckerTCP, srv.addr, func(c *messages.Config) {
		c.Secure = true
	})

	probeCancelled(t, cfg, accepted)
	srv.waitClosed(t)
}

// With Options.ResetClose the prober ends each connection with a reset, so
// the backend reads ECONNRESET instead of EOF and the prober's side keeps
// no TIME_WAIT socket.
func TestTCPResetClose(t *testing.T) {
	for _, tc := range []struct {
		reset bool
		want  error
	}{
		{reset: false, want: io.EOF},
		{reset: true, want: syscall.ECONNRESET},
	} {
		t.Run(fmt.Sprintf("reset=%t", tc.reset), func(t *testing.T) {
			ended := make(chan error, 1)
			ln := listenTCP(t, "tcp4", "127.0.0.1:0")
			ap := serveTCP(t, ln, func(c net.Conn) {
				_, err := io.Copy(io.Discard, c)
				if err == nil {
					err = io.EOF // Copy reports EOF as success.
				}
				ended <- err
			}).addr
			cfg := testConfig(t, messages.CheckerTCP, ap, nil)
			p, err := Options{ResetClose: tc.reset}.New(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := p.Probe(t.Context())
			checkResult(t, got, true, "TCP connect to "+ap.String())

			select {
			case err := <-ended:
				if !errors.Is(err, tc.want) {
					t.Errorf("backend read %v, want %v", err, tc.want)
				}
			case <-time.After(probeTimeout):
				t.Fatalf("backend saw no end of the connection within %v", probeTimeout)
			}
		})
	}
}
