package enginesim

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/messages"
)

// ip returns s in the Engine's 16-byte form.
func ip(s string) net.IP { return net.ParseIP(s).To16() }

// plain returns a plain target of 127.0.0.1.
func plain(port int, proto uint16) bridge.Target {
	return bridge.Target{IP: ip("127.0.0.1"), Host: ip("127.0.0.1"),
		Port: port, Proto: proto}
}

// TestHealthchecksWire checks that every kind of check reaches a client
// as the Engine's newConfig would build it.
func TestHealthchecksWire(t *testing.T) {
	const sec = time.Second
	tests := []struct {
		name  string
		check Check
		want  bridge.Config
	}{{
		name: "tcp",
		check: Check{Type: "tcp", IP: "127.0.0.1", Port: 80, Send: "PING",
			Receive: "PONG", Interval: 2 * sec, Timeout: sec, Retries: 3},
		want: bridge.Config{Interval: 2 * sec, Timeout: sec, Retries: 3,
			Checker: &bridge.TCPChecker{Target: plain(80, bridge.ProtoTCP),
				Send: "PING", Receive: "PONG"}},
	}, {
		name:  "tcp defaults",
		check: Check{Type: "TCP", IP: "127.0.0.1", Port: 80},
		want: bridge.Config{Interval: 10 * sec, Timeout: 5 * sec,
			Checker: &bridge.TCPChecker{Target: plain(80, bridge.ProtoTCP)}},
	}, {
		name:  "tcp_tls",
		check: Check{Type: "tcp_tls", IP: "127.0.0.1", Port: 443},
		want: bridge.Config{Interval: 10 * sec, Timeout: 5 * sec,
			Checker: &bridge.TCPChecker{Target: plain(443, bridge.ProtoTCP),
				Secure: true, TLSVerify: true}},
	}, {
		name: "tcp_tls without verify",
		check: Check{Type: "tcp_tls", IP: "127.0.0.1", Port: 443,
			TLSVerify: boolPtr(false)},
		want: bridge.Config{Interval: 10 * sec, Timeout: 5 * sec,
			Checker: &bridge.TCPChecker{Target: plain(443, bridge.ProtoTCP),
				Secure: true}},
	}, {
		name:  "http defaults",
		check: Check{Type: "http", IP: "127.0.0.1", Port: 8080},
		want: bridge.Config{Interval: 10 * sec, Timeout: 5 * sec,
			Checker: &bridge.HTTPChecker{Target: plain(8080, bridge.ProtoTCP),
				TLSVerify: true, Method: "GET", Request: "/", ResponseCode: 200}},
	}, {
		name: "http ignores tls_verify",
		check: Check{Type: "http", IP: "127.0.0.1", Port: 8080,
			Send: "/healthz", Receive: "ok", Code: 204, Method: "HEAD",
			Proxy: true, TLSVerify: boolPtr(false)},
		want: bridge.Config{Interval: 10 * sec, Timeout: 5 * sec,
			Checker: &bridge.HTTPChecker{Target: plain(8080, bridge.ProtoTCP),
				TLSVerify: true, Method: "HEAD", Proxy: true,
				Request: "/healthz", Response: "ok", ResponseCode: 204}},
	}, {
		name: "https",
		check: Check{Type: "https", IP: "127.0.0.1", Port: 8443,
			TLSVerify: boolPtr(false)},
		want: bridge.Config{Interval: 10 * sec, Timeout: 5 * sec,
			Checker: &bridge.HTTPChecker{Target: plain(8443, bridge.ProtoTCP),
				Secure: true, Method: "GET", Request: "/", ResponseCode: 200}},
	}, {
		name: "dns",
		check: Check{Type: "dns", IP: "::1", Port: 53, Send: "example.test.",
			Method: "aaaa", Receive: "2001:db8::1"},
		want: bridge.Config{Interval: 10 * sec, Timeout: 5 * sec,
			Checker: &bridge.DNSChecker{
				Target: bridge.Target{IP: ip("::1"), Host: ip("::1"),
					Port: 53, Proto: bridge.ProtoUDP},
				Question: bridge.Question{Name: "example.test.", Qtype: 28,
					Qclass: bridge.DNSClassINET},
				Answer: "2001:db8::1"}},
	}, {
		name:  "icmp",
		check: Check{Type: "icmp", IP: "127.0.0.1"},
		want: bridge.Config{Interval: 10 * sec, Timeout: 5 * sec,
			Checker: &bridge.PingChecker{Target: plain(0, bridge.ProtoICMP),
				ID: testPingID}},
	}, {
		name:  "icmp over IPv6",
		check: Check{Type: "icmp", IP: "::1"},
		want: bridge.Config{Interval: 10 * sec, Timeout: 5 * sec,
			Checker: &bridge.PingChecker{Target: bridge.Target{IP: ip("::1"),
				Host: ip("::1"), Proto: bridge.ProtoICMPv6}, ID: testPingID}},
	}, {
		name: "udp",
		check: Check{Type: "udp", IP: "127.0.0.1", Port: 9, Send: "a",
			Receive: "b"},
		want: bridge.Config{Interval: 10 * sec, Timeout: 5 * sec,
			Checker: &bridge.UDPChecker{Target: plain(9, bridge.ProtoUDP),
				Send: "a", Receive: "b"}},
	}, {
		name:  "radius",
		check: Check{Type: "radius", IP: "127.0.0.1", Port: 1812, Send: "u:p:s"},
		want: bridge.Config{Interval: 10 * sec, Timeout: 5 * sec,
			Checker: &bridge.RADIUSChecker{Target: plain(1812, bridge.ProtoUDP),
				Username: "u", Password: "p", Secret: "s", Response: "accept"}},
	}, {
		name: "http in dsr mode",
		check: Check{Type: "http", IP: "192.0.2.10", Host: "10.0.0.1",
			Port: 80, Mode: "dsr"},
		want: bridge.Config{Interval: 10 * sec, Timeout: 5 * sec,
			Checker: &bridge.HTTPChecker{
				Target: bridge.Target{IP: ip("192.0.2.10"), Host: ip("10.0.0.1"),
					Mark: MarkBase, Mode: bridge.ModeDSR, Port: 80,
					Proto: bridge.ProtoTCP},
				TLSVerify: true, Method: "GET", Request: "/", ResponseCode: 200}},
	}, {
		name: "tcp in tun mode with a mark",
		check: Check{Type: "tcp", IP: "192.0.2.10", Host: "10.0.0.1",
			Port: 80, Mode: "TUN", Mark: 70000},
		want: bridge.Config{Interval: 10 * sec, Timeout: 5 * sec,
			Checker: &bridge.TCPChecker{
				Target: bridge.Target{IP: ip("192.0.2.10"), Host: ip("10.0.0.1"),
					Mark: 70000, Mode: bridge.ModeTUN, Port: 80,
					Proto: bridge.ProtoTCP}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path := startServer(t, testConfig())
			setChecks(t, s, tt.check)

			got := fetch(t, path).Configs
			want := tt.want
			want.Id = testIDBase
			if diff := cmp.Diff(map[uint64]*bridge.Config{testIDBase: &want},
				got); diff != "" {
				t.Errorf("Configs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHealthchecksConvert checks that what a client fetches converts with
// the bridge's ToConfigs to the configs the server runs, every type and
// mode included.
func TestHealthchecksConvert(t *testing.T) {
	s, path := startServer(t, testConfig())
	ids := setChecks(t, s,
		Check{Type: "tcp", IP: "127.0.0.1", Port: 80, Send: "a", Receive: "b"},
		Check{Type: "http", IP: "127.0.0.1", Port: 80, Send: "/healthz",
			Receive: "ok"},
		Check{Type: "https", IP: "127.0.0.1", Port: 443, Code: 204},
		Check{Type: "dns", IP: "127.0.0.1", Port: 53, Send: "example.test.",
			Method: "A", Receive: "192.0.2.1"},
		Check{Type: "icmp", IP: "127.0.0.1"},
		Check{Type: "udp", IP: "127.0.0.1", Port: 9},
		Check{Type: "radius", IP: "127.0.0.1", Port: 1812, Send: "u:p:s"},
		Check{Type: "tcp", IP: "192.0.2.10", Host: "10.0.0.1", Port: 80,
			Mode: "dsr"},
	)

	configs, rejected := bridge.ToConfigs(fetch(t, path))

	lo := netip.MustParseAddr("127.0.0.1")
	common := messages.Config{Interval: DefaultInterval, Timeout: DefaultTimeout,
		IP: lo}
	want := []messages.Config{common, common, common, common, common, common,
		common, common}
	want[0].ID, want[0].Checker, want[0].Port = ids[0], messages.CheckerTCP, 80
	want[0].Send, want[0].Receive = "a", "b"
	want[1].ID, want[1].Checker, want[1].Port = ids[1], messages.CheckerHTTP, 80
	want[1].Method, want[1].Path, want[1].Response = "GET", "/healthz", "ok"
	want[1].ExpectedCodes = []int{200}
	want[2].ID, want[2].Checker, want[2].Port = ids[2], messages.CheckerHTTP, 443
	want[2].Method, want[2].Path, want[2].ExpectedCodes = "GET", "/", []int{204}
	want[2].Secure, want[2].TLSVerify = true, true
	want[3].ID, want[3].Checker, want[3].Port = ids[3], messages.CheckerDNS, 53
	want[3].Query, want[3].QueryType = "example.test.", "A"
	want[3].ExpectedIPs = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	want[4].ID, want[4].Checker, want[4].Port = ids[4], messages.CheckerICMP, 0
	want[5].ID, want[5].Checker, want[5].Port = ids[5], messages.CheckerUDP, 9
	want[6].ID, want[6].Checker, want[6].Port = ids[6], messages.CheckerRADIUS, 1812
	want[6].Username, want[6].Password, want[6].Secret = "u", "p", "s"
	want[6].Response = "accept"
	want[7].ID, want[7].Checker, want[7].Port = ids[7], messages.CheckerTCP, 80
	want[7].IP = netip.MustParseAddr("192.0.2.10")
	want[7].Mode, want[7].Mark = messages.ModeDSR, MarkBase
	want[7].Backend = netip.MustParseAddr("10.0.0.1")

	if len(rejected) != 0 {
		t.Errorf("got %d rejected, want none: %v", len(rejected), rejected)
	}
	if len(configs) != len(want) {
		t.Fatalf("got %d configs, want %d: %+v", len(configs), len(want), configs)
	}
	for i := range want {
		if !configs[i].Equal(&want[i]) {
			t.Errorf("config %d:\ngot  %+v\nwant %+v", i, configs[i], want[i])
		}
	}
}

// TestHealthchecksNone checks that no checks arrive as a nil map, as the
// Engine sends them.
func TestHealthchecksNone(t *testing.T) {
	s, path := startServer(t, testConfig())
	if got := fetch(t, path).Configs; got != nil {
		t.Errorf("before SetChecks: Configs = %v, want nil", got)
	}
	setChecks(t, s, Check{Type: "tcp", IP: "127.0.0.1", Port: 80})
	setChecks(t, s)
	if got := fetch(t, path).Configs; got != nil {
		t.Errorf("after an empty SetChecks: Configs = %v, want nil", got)
	}
}
