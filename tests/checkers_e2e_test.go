package tests

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/lbhealth/hcsupervisor/messages"
)

// TestCheckerTypesOverSocket configures the udp, radius, icmp and dns
// (CNAME and TXT) checkers, and a udp check in DSR mode, over the socket in
// one update_configs line written as an operator writes it, against
// backends on loopback, and checks each check's first notification.
func TestCheckerTypesOverSocket(t *testing.T) {
	const (
		user     = "probe"
		password = "a password longer than sixteen bytes"
		secret   = "s3cret"
	)
	srv := startServer(t, serverOptions{})
	echo := startEchoUDP(t)
	closedUDP := closedUDPAddr(t)
	rad := startRADIUSAuth(t, user, password, secret)
	records := startRecordDNS(t)

	// outcome is a first notification's state and what its message
	// contains.
	type outcome struct {
		state messages.State
		msg   []string
	}
	tests := []struct {
		name   string
		fields string // the config's JSON fields beyond id, interval, timeout
		want   outcome
		// alt, if set, passes too: icmp needs a ping socket or
		// CAP_NET_RAW, and a mark needs CAP_NET_ADMIN.
		alt *outcome
	}{
		{
			name: "udp echo",
			fields: udpFields(echo) +
				`,"send":"hello udp","receive":"hello"`,
			want: outcome{healthy, []string{"UDP check to " + echo.String()}},
		},
		{
			name:   "udp any reply",
			fields: udpFields(echo) + `,"send":"x"`,
			want:   outcome{healthy, []string{"UDP check to " + echo.String()}},
		},
		{
			name:   "udp wrong reply",
			fields: udpFields(echo) + `,"send":"hello","receive":"bye"`,
			want: outcome{unhealthy, []string{
				"UDP check to " + echo.String(),
				`unexpected response - "hello"`,
			}},
		},
		{
			name:   "udp port unreachable",
			fields: udpFields(closedUDP) + `,"send":"hello"`,
			want: outcome{unhealthy, []string{
				"UDP check to " + closedUDP.String(), "connection refused",
			}},
		},
		{
			name: "udp dsr with a mark",
			fields: udpFields(echo) + `,"send":"hello","receive":"hello",` +
				`"mode":"dsr","mark":65536,"backend":"127.0.0.1"`,
			want: outcome{healthy, []string{"UDP check to " + echo.String()}},
			alt: &outcome{unhealthy, []string{
				"setting SO_MARK 65536 needs CAP_NET_ADMIN",
			}},
		},
		{
			name:   "radius accept",
			fields: radiusFields(rad, user, password, secret, ""),
			want: outcome{healthy, []string{
				"RADIUS Access-Request to " + rad.String(), "got Access-Accept",
			}},
		},
		{
			name:   "radius wrong password",
			fields: radiusFields(rad, user, "wrong", secret, ""),
			want: outcome{unhealthy, []string{
				"got Access-Reject; want Access-Accept",
			}},
		},
		{
			name:   "radius reject expected",
			fields: radiusFields(rad, user, "wrong", secret, "reject"),
			want:   outcome{healthy, []string{"got Access-Reject"}},
		},
		{
			name:   "radius wrong secret",
			fields: radiusFields(rad, user, password, "other", "any"),
			want: outcome{unhealthy, []string{
				"response authenticator mismatch",
			}},
		},
		{
			name:   "icmp loopback",
			fields: `"checker_type":"icmp","ip":"127.0.0.1"`,
			want:   outcome{healthy, []string{"ICMP ping to host 127.0.0.1"}},
			alt: &outcome{unhealthy, []string{
				"ICMP ping to host 127.0.0.1", "no ICMP socket available",
			}},
		},
		{
			name: "dns cname",
			fields: dnsFields(records, "www.example.test", "cname") +
				`,"expected_answers":["WEB.Example.test"]`,
			want: outcome{healthy, []string{
				"DNS www.example.test. IN CNAME query to " + records.String(),
				"received answer web.example.test.",
			}},
		},
		{
			name: "dns txt",
			fields: dnsFields(records, "txt.example.test", "TXT") +
				`,"expected_answers":["v=spf1 -all"]`,
			want: outcome{healthy, []string{
				"DNS txt.example.test. IN TXT query to " + records.String(),
				"received answer v=spf1 -all",
			}},
		},
		{
			name: "dns txt unexpected",
			fields: dnsFields(records, "txt.example.test", "TXT") +
				`,"expected_answers":["v=spf1 +all"]`,
			want: outcome{unhealthy, []string{"answer v=spf1 -all not expected"}},
		},
		{
			name:   "dns cname missing",
			fields: dnsFields(records, "txt.example.test", "CNAME"),
			want:   outcome{unhealthy, []string{"no CNAME answer"}},
		},
	}

	var configs []string
	var all []uint64
	for i, tt := range tests {
		id := uint64(i + 1)
		all = append(all, id)
		configs = append(configs, fmt.Sprintf(
			`{"id":%d,"interval":%q,"timeout":%q,%s}`,
			id, checkInterval, checkTimeout, tt.fields))
	}
	c := dial(t, srv.path)
	c.sendRaw(`{"type":"update_configs","configs":[` +
		strings.Join(configs, ",") + "]}\n")
	first := c.waitFirstNotes(0, all...)
	for _, line := range c.got {
		if e, ok := line.msg.(*messages.Error); ok {
			t.Errorf("server rejected a config: %s", e.Message)
		}
	}

	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := first[uint64(i+1)].Status
			t.Logf("%v: %s", st.State, st.Message)
			got := tt.want
			if tt.alt != nil && st.State == tt.alt.state {
				got = *tt.alt
			}
			if st.State != got.state {
				t.Errorf("state = %v, want %v (message %q)",
					st.State, got.state, st.Message)
			}
			for _, want := range got.msg {
				if !strings.Contains(st.Message, want) {
					t.Errorf("message = %q, want it to contain %q", st.Message, want)
				}
			}
			wantSucc, wantFail := uint64(0), uint64(1)
			if got.state == healthy {
				wantSucc, wantFail = 1, 0
			}
			if st.Successes != wantSucc || st.Failures != wantFail {
				t.Errorf("successes, failures = %d, %d; want %d, %d",
					st.Successes, st.Failures, wantSucc, wantFail)
			}
		})
	}
}

// udpFields returns the JSON fields of a udp check of target.
func udpFields(target netip.AddrPort) string {
	return fmt.Sprintf(`"checker_type":"udp","ip":%q,"port":%d`,
		target.Addr(), target.Port())
}

// radiusFields returns the JSON fields of a radius check of target;
// an empty response is left out, for the default.
func radiusFields(
	target netip.AddrPort, user, password, secret, response string,
) string {
	s := fmt.Sprintf(`"checker_type":"radius","ip":%q,"port":%d,`+
		`"username":%q,"password":%q,"secret":%q`,
		target.Addr(), target.Port(), user, password, secret)
	if response != "" {
		s += fmt.Sprintf(`,"response":%q`, response)
	}
	return s
}

// dnsFields returns the JSON fields of a dns check of target asking for
// name with type qtype.
func dnsFields(target netip.AddrPort, name, qtype string) string {
	return fmt.Sprintf(`"checker_type":"dns","ip":%q,"port":%d,`+
		`"query":%q,"query_type":%q`,
		target.Addr(), target.Port(), name, qtype)
}

// startEchoUDP starts a UDP server on loopback that sends every datagram
// back. It is closed when the test ends.
func startEchoUDP(t testing.TB) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return addrPort(t, pc.LocalAddr())
}

// closedUDPAddr returns a loopback UDP address where nothing listens, so
// a datagram to it draws an ICMP port unreachable.
func closedUDPAddr(t testing.TB) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	ap := addrPort(t, pc.LocalAddr())
	pc.Close()
	return ap
}

// startRADIUSAuth starts a RADIUS server on loopback with the shared
// secret. It accepts an Access-Request from user whose password, hidden
// as RFC 2865 says, is password, and which carries a NAS-Identifier and
// the NAS-IP-Address 127.0.0.1; it rejects any other. It is shut down
// when the test ends.
func startRADIUSAuth(t testing.TB, user, password, secret string) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	handler := func(w radius.ResponseWriter, r *radius.Request) {
		code := radius.CodeAccessReject
		p := r.Packet
		// The library unhides the password with the secret and this
		// request's authenticator: a password hidden any other way comes
		// out wrong.
		if rfc2865.UserName_GetString(p) == user &&
			rfc2865.UserPassword_GetString(p) == password &&
			rfc2865.NASIdentifier_GetString(p) != "" &&
			rfc2865.NASIPAddress_Get(p).Equal(net.IPv4(127, 0, 0, 1)) {
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
		// Shutdown closes only a socket that Serve has taken up.
		pc.Close()
		<-served
	})
	return addrPort(t, pc.LocalAddr())
}

// startRecordDNS starts a DNS server on loopback UDP that answers
// www.example.test with a CNAME to web.example.test, txt.example.test
// with a TXT record in two strings, "v=spf1 " and "-all", and any other
// question with no answer. It is shut down when the test ends.
func startRecordDNS(t testing.TB) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	handler := func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		q := r.Question[0]
		var rr string
		switch {
		case dns.CanonicalName(q.Name) == "www.example.test." &&
			q.Qtype == dns.TypeCNAME:
			rr = q.Name + " 60 IN CNAME web.example.test."
		case dns.CanonicalName(q.Name) == "txt.example.test." &&
			q.Qtype == dns.TypeTXT:
			rr = q.Name + ` 60 IN TXT "v=spf1 " "-all"`
		}
		if rr != "" {
			answer, err := dns.NewRR(rr)
			if err != nil {
				panic(fmt.Sprintf("bad test record %q: %v", rr, err))
			}
			m.Answer = append(m.Answer, answer)
		}
		w.WriteMsg(m)
	}
	started := make(chan struct{})
	srv := &dns.Server{
		PacketConn:        pc,
		Handler:           dns.HandlerFunc(handler),
		NotifyStartedFunc: func() { close(started) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-served:
		t.Fatalf("dns server: %v", err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		<-served
	})
	return addrPort(t, pc.LocalAddr())
}
