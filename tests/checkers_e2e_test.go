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
	"golang.org/x/net/icmp"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/lbhealth/hcsupervisor/messages"
)

// TestCheckerTypesOverSocket configures the udp, radius, icmp, https,
// http (with host and proxy) and dns (CNAME, TXT, AAAA, MX, NS, PTR and
// SOA) checkers, and udp in DSR and tcp in TUN mode, over the socket in
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
	web := startPathBackend(t)
	tlsAddr := startTLSBackend(t)
	tcpUp := startTCP(t, false)

	// A probe the machine cannot run fails with the reason given.
	noMark := outcome{unhealthy, []string{
		"setting SO_MARK 65536 needs CAP_NET_ADMIN",
	}}
	noICMP := outcome{unhealthy, []string{
		"ICMP ping to host 127.0.0.1", "no ICMP socket available",
	}}
	tests := []struct {
		name   string
		fields string // the config's JSON fields beyond id, interval, timeout
		want   outcome
		// lacking, if set, says why this machine cannot run the probe
		// (nil if it can), and the check must then report alt.
		lacking func() error
		alt     outcome
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
				"UDP check to " + closedUDP.String(),
				"ICMP port unreachable (connection refused)",
			}},
		},
		{
			name: "udp dsr with a mark",
			fields: udpFields(echo) + `,"send":"hello","receive":"hello",` +
				`"mode":"dsr","mark":65536,"backend":"127.0.0.1"`,
			want:    outcome{healthy, []string{"UDP check to " + echo.String()}},
			lacking: markUnavailable,
			alt:     noMark,
		},
		{
			name: "tcp tun with a mark",
			fields: tcpFields(tcpUp.addr) +
				`,"mode":"tun","mark":65536,"backend":"127.0.0.1"`,
			want: outcome{healthy, []string{
				"TCP connect to " + tcpUp.addr.String(),
			}},
			lacking: markUnavailable,
			alt:     noMark,
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
			name:    "icmp loopback",
			fields:  `"checker_type":"icmp","ip":"127.0.0.1"`,
			want:    outcome{healthy, []string{"ICMP ping to host 127.0.0.1"}},
			lacking: icmpUnavailable,
			alt:     noICMP,
		},
		{
			name: "https without verification",
			fields: httpFields(tlsAddr, "/") +
				`,"secure":true,"tls_verify":false,"response":"OK backend"`,
			want: outcome{healthy, []string{
				"HTTP GET to " + tlsAddr.String(), "got 200 OK",
			}},
		},
		{
			name: "http with host",
			fields: httpFields(web.addr, "/vhost") +
				fmt.Sprintf(`,"host":%q`, vhost),
			want: outcome{healthy, []string{
				"HTTP GET to " + web.addr.String(), "got 200 OK",
			}},
		},
		{
			name: "http with host and proxy",
			fields: httpFields(web.addr, "/proxied") +
				fmt.Sprintf(`,"host":%q,"proxy":true`, vhost),
			want: outcome{healthy, []string{
				"HTTP GET to " + web.addr.String(), "got 200 OK",
			}},
		},
		{
			name: "http with host, no proxy",
			fields: httpFields(web.addr, "/proxied") +
				fmt.Sprintf(`,"host":%q`, vhost),
			want: outcome{unhealthy, []string{"got 421 Misdirected Request"}},
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
		{
			name: "dns aaaa",
			fields: dnsFields(records, "v6.example.test", "AAAA") +
				`,"expected_ips":["2001:db8::10"]`,
			want: outcome{healthy, []string{
				"DNS v6.example.test. IN AAAA query to " + records.String(),
				"received answer 2001:db8::10",
			}},
		},
		{
			name: "dns mx",
			fields: dnsFields(records, "example.test", "MX") +
				`,"expected_answers":["20 MX2.example.test"]`,
			want: outcome{healthy, []string{
				"received answer 20 mx2.example.test.",
			}},
		},
		{
			name: "dns ns",
			fields: dnsFields(records, "example.test", "NS") +
				`,"expected_answers":["ns1.example.test."]`,
			want: outcome{healthy, []string{"received answer ns1.example.test."}},
		},
		{
			name: "dns ptr",
			fields: dnsFields(records, "10.2.0.192.in-addr.arpa", "PTR") +
				`,"expected_answers":["host.example.test"]`,
			want: outcome{healthy, []string{"received answer host.example.test."}},
		},
		{
			name: "dns soa",
			fields: dnsFields(records, "example.test", "SOA") +
				`,"expected_answers":` +
				`["ns1.example.test hostmaster.example.test 2026120401"]`,
			want: outcome{healthy, []string{
				"received answer ns1.example.test. hostmaster.example.test. " +
					"2026120401 7200 900 1209600 300",
			}},
		},
		{
			name: "dns soa of another serial",
			fields: dnsFields(records, "example.test", "SOA") +
				`,"expected_answers":` +
				`["ns1.example.test hostmaster.example.test 1"]`,
			want: outcome{unhealthy, []string{"not expected"}},
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
			want := tt.want
			if tt.lacking != nil {
				if err := tt.lacking(); err != nil {
					t.Logf("this machine cannot run the probe (%v): "+
						"the check must say so", err)
					want = tt.alt
				}
			}
			checkFirstStatus(t, st, want)
		})
	}
}

// outcome is a first notification's state and what its message
// contains.
type outcome struct {
	state messages.State
	msg   []string
}

// checkFirstStatus checks the status of a check's first notification
// against want: its state, its message and its counts.
func checkFirstStatus(t *testing.T, st messages.Status, want outcome) {
	t.Helper()
	if st.State != want.state {
		t.Errorf("state = %v, want %v (message %q)",
			st.State, want.state, st.Message)
	}
	for _, part := range want.msg {
		if !strings.Contains(st.Message, part) {
			t.Errorf("message = %q, want it to contain %q", st.Message, part)
		}
	}
	wantSucc, wantFail := uint64(0), uint64(1)
	if want.state == healthy {
		wantSucc, wantFail = 1, 0
	}
	if st.Successes != wantSucc || st.Failures != wantFail {
		t.Errorf("successes, failures = %d, %d; want %d, %d",
			st.Successes, st.Failures, wantSucc, wantFail)
	}
}

// icmpUnavailable says why this process can open no ICMP socket, as the
// icmp prober needs, or returns nil if it can: an unprivileged ping
// socket (net.ipv4.ping_group_range) or a raw one (CAP_NET_RAW).
func icmpUnavailable() error {
	c, pingErr := icmp.ListenPacket("udp4", "0.0.0.0")
	if pingErr == nil {
		c.Close()
		return nil
	}
	c, rawErr := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if rawErr == nil {
		c.Close()
		return nil
	}
	return fmt.Errorf("no ICMP socket: ping socket: %v; raw socket: %v",
		pingErr, rawErr)
}

// udpFields returns the JSON fields of a udp check of target.
func udpFields(target netip.AddrPort) string {
	return fmt.Sprintf(`"checker_type":"udp","ip":%q,"port":%d`,
		target.Addr(), target.Port())
}

// tcpFields returns the JSON fields of a tcp check of target.
func tcpFields(target netip.AddrPort) string {
	return fmt.Sprintf(`"checker_type":"tcp","ip":%q,"port":%d`,
		target.Addr(), target.Port())
}

// httpFields returns the JSON fields of an http check of target
// requesting path.
func httpFields(target netip.AddrPort, path string) string {
	return fmt.Sprintf(`"checker_type":"http","ip":%q,"port":%d,"path":%q`,
		target.Addr(), target.Port(), path)
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

// recordZone is what startRecordDNS answers: the records of each name,
// in canonical form, and type.
var recordZone = map[dns.Question][]string{
	recordQ("www.example.test.", dns.TypeCNAME): {"CNAME web.example.test."},
	recordQ("txt.example.test.", dns.TypeTXT):   {`TXT "v=spf1 " "-all"`},
	recordQ("v6.example.test.", dns.TypeAAAA):   {"AAAA 2001:db8::10"},
	recordQ("example.test.", dns.TypeMX): {
		"MX 10 mx1.example.test.", "MX 20 mx2.example.test.",
	},
	recordQ("example.test.", dns.TypeNS): {"NS ns1.example.test."},
	recordQ("10.2.0.192.in-addr.arpa.", dns.TypePTR): {
		"PTR host.example.test.",
	},
	recordQ("example.test.", dns.TypeSOA): {
		"SOA ns1.example.test. hostmaster.example.test. " +
			"2026120401 7200 900 1209600 300",
	},
}

// recordQ returns the IN question for name and qtype.
func recordQ(name string, qtype uint16) dns.Question {
	return dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}
}

// startRecordDNS starts a DNS server on loopback UDP that answers the
// questions of recordZone (names compared case-insensitively) with its
// records, among them a CNAME of www.example.test to web.example.test
// and a TXT record of txt.example.test in two strings, "v=spf1 " and
// "-all", and any other question with no answer. It is shut down when
// the test ends.
func startRecordDNS(t testing.TB) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	handler := func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		q := r.Question[0]
		key := recordQ(dns.CanonicalName(q.Name), q.Qtype)
		for _, data := range recordZone[key] {
			rr, err := dns.NewRR(q.Name + " 60 IN " + data)
			if err != nil {
				panic(fmt.Sprintf("bad test record %q: %v", data, err))
			}
			m.Answer = append(m.Answer, rr)
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
