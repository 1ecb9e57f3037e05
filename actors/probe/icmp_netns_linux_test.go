//go:build linux

package probe

import (
	"net/netip"
	"testing"

	"github.com/lbhealth/hcsupervisor/messages"
)

// Values of net.ipv4.ping_group_range, which governs the ping sockets of
// both families: no group may open one (the kernel's default), or every
// group may.
const (
	pingGroupsNone = "1 0"
	pingGroupsAll  = "0 2147483647"
)

// TestICMPSilentHost pings, from one namespace the test created, the
// backend in another over a veth pair, over IPv4 and IPv6: first while
// the backend answers, then with icmp_echo_ignore_all set there, so it
// stays silent. The silent probe must fail, saying it timed out, by its
// Timeout plus lateness; the helper process that probes fails if it
// leaves a goroutine behind. It pings over a raw socket, over an
// unprivileged ping socket (ping_group_range opened in the prober's
// namespace, CAP_NET_RAW dropped from the probing thread), and with
// neither, where every probe must fail with ErrNoICMPSocket's message.
func TestICMPSilentHost(t *testing.T) {
	requireNetns(t)
	pair := newNSPair(t)
	sockets := []struct {
		name       string
		pingGroups string
		dropRaw    bool   // drop CAP_NET_RAW from the probing thread
		wantSocket string // what openEcho gives: raw, ping or none
	}{
		{"raw socket", pingGroupsNone, false, "raw"},
		{"ping socket without CAP_NET_RAW", pingGroupsAll, true, "ping"},
		{"ping socket preferred", pingGroupsAll, false, "ping"},
		{"no socket", pingGroupsNone, true, "none"},
	}
	ignoreAll := map[netFamily]string{
		fam4: "net.ipv4.icmp_echo_ignore_all",
		fam6: "net.ipv6.icmp.echo_ignore_all",
	}
	families := pair.families()

	// Every family and socket, first with the backend answering, then
	// with it silent: one helper process for each.
	var probes []netnsProbe
	for _, f := range families {
		for _, s := range sockets {
			cfg := testConfig(t, messages.CheckerICMP,
				netip.AddrPortFrom(f.backend, 0),
				func(c *messages.Config) { c.Timeout = silentTimeout })
			probes = append(probes, netnsProbe{
				Config:     cfg,
				PingGroups: s.pingGroups,
				DropRaw:    s.dropRaw,
			})
		}
	}
	outcomes := map[bool][]netnsOutcome{}
	for _, silent := range []bool{false, true} {
		ignore := "0"
		if silent {
			ignore = "1"
		}
		for _, f := range families {
			pair.backend.sysctl(t, ignoreAll[f], ignore)
		}
		outcomes[silent] = probeInNetns(t, pair.lb, probes)
	}

	for fi, f := range families {
		t.Run(f.name, func(t *testing.T) {
			prefix := "ICMP ping to host " + f.backend.String()
			for si, s := range sockets {
				t.Run(s.name, func(t *testing.T) {
					for _, silent := range []bool{false, true} {
						o := outcomes[silent][fi*len(sockets)+si]
						t.Logf("silent=%v, socket %s: %q after %v",
							silent, o.Socket, o.Result.Message, o.Elapsed)
						if o.Socket != s.wantSocket {
							t.Errorf("socket = %s, want %s",
								o.Socket, s.wantSocket)
						}
						switch {
						case s.wantSocket == "none":
							checkResult(t, o.Result, false,
								ErrNoICMPSocket.Error())
						case silent:
							checkResult(t, o.Result, false,
								prefix+"; read timed out")
						default:
							checkResult(t, o.Result, true, prefix)
						}
						if o.Elapsed > silentTimeout+lateness {
							t.Errorf("probe took %v, want at most %v",
								o.Elapsed, silentTimeout+lateness)
						}
					}
				})
			}
		})
	}
	pair.reportMissingFamilies(t)
}
