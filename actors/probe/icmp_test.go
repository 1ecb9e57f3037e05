package probe

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/lbhealth/hcsupervisor/messages"
)

// requireICMP skips the test, saying why, unless this machine lets the
// process open an ICMP socket for ip's family.
func requireICMP(t *testing.T, ip netip.Addr) {
	t.Helper()
	sock, err := openEcho(ip.Is6())
	if errors.Is(err, ErrNoICMPSocket) {
		groups, _ := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
		t.Skipf("%v (ping_group_range is %q)", err,
			strings.TrimSpace(string(groups)))
	}
	if err != nil {
		t.Fatalf("open ICMP socket: %v", err)
	}
	kind := "an unprivileged ping socket"
	if sock.raw {
		kind = "a raw socket"
	}
	t.Logf("pinging %s over %s", ip, kind)
	sock.conn.Close()
}

func TestICMP(t *testing.T) {
	for _, ip := range []string{"127.0.0.1", "::1"} {
		t.Run(ip, func(t *testing.T) {
			checkNoLeaks(t)
			addr := netip.MustParseAddr(ip)
			requireICMP(t, addr)
			cfg := testConfig(t, messages.CheckerICMP,
				netip.AddrPortFrom(addr, 0), nil)
			p := mustNew(t, &cfg)
			// Several probes: sequence numbers advance across them.
			for range 3 {
				ctx := t.Context()
				checkResult(t, p.Probe(ctx), true, "ICMP ping to host "+ip)
			}
		})
	}
}

// TestICMPIsReply checks which packets the prober takes for its reply.
func TestICMPIsReply(t *testing.T) {
	lo4, lo6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	echo := func(typ icmp.Type, id, seq int) []byte {
		m := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq,
			Data: echoPayload}}
		b, err := m.Marshal(nil)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		return b
	}
	from := func(ip netip.Addr, raw bool) net.Addr {
		if raw {
			return &net.IPAddr{IP: ip.AsSlice()}
		}
		return &net.UDPAddr{IP: ip.AsSlice()}
	}
	reply4 := echo(ipv4.ICMPTypeEchoReply, 7, 9)
	corrupt := append([]byte(nil), reply4...)
	corrupt[len(corrupt)-1] ^= 1
	tests := []struct {
		name string
		ip   netip.Addr
		b    []byte
		peer net.Addr
		raw  bool
		want bool
	}{
		{"v4 raw reply", lo4, reply4, from(lo4, true), true, true},
		{"v4 raw other id", lo4, echo(ipv4.ICMPTypeEchoReply, 8, 9),
			from(lo4, true), true, false},
		{"v4 ping socket ignores id", lo4, echo(ipv4.ICMPTypeEchoReply, 8, 9),
			from(lo4, false), false, true},
		{"v4 other seq", lo4, echo(ipv4.ICMPTypeEchoReply, 7, 10),
			from(lo4, true), true, false},
		{"v4 request", lo4, echo(ipv4.ICMPTypeEcho, 7, 9),
			from(lo4, true), true, false},
		{"v4 other source", lo4, reply4,
			from(netip.MustParseAddr("127.0.0.2"), true), true, false},
		{"v4 bad checksum", lo4, corrupt, from(lo4, true), true, false},
		{"v4 truncated", lo4, reply4[:5], from(lo4, true), true, false},
		{"v6 reply", lo6, echo(ipv6.ICMPTypeEchoReply, 7, 9),
			from(lo6, true), true, true},
		{"v6 request", lo6, echo(ipv6.ICMPTypeEchoRequest, 7, 9),
			from(lo6, true), true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &icmpProber{ip: tc.ip}
			if got := p.isReply(tc.b, tc.peer, tc.raw, 7, 9); got != tc.want {
				t.Errorf("isReply() = %v, want %v", got, tc.want)
			}
		})
	}
}
