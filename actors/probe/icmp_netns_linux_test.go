//go:build linux

package probe

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
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

// icmpDest is a destination of TestICMPUnreachable, as the lb's routes
// and the backend's make it.
type icmpDest struct {
	name string
	host int // the address's last byte, under unreachablePrefix
	// lbRoute is the lb's route to it: "via" the backend, or a route
	// type such as "unreachable"; empty for none.
	lbRoute string
	// beRoute is the backend's route type for it, if lbRoute is "via".
	beRoute string
	// want is what the probe's message must contain after its prefix,
	// and cause what it must contain after that.
	want, cause string
	// icmpError says the backend answers with an ICMP destination
	// unreachable.
	icmpError bool
}

// icmpDests are the destinations of TestICMPUnreachable: one routed to a
// backend that drops it without a word, one that has no route at all,
// one the lb's own routing rejects, and one the backend rejects with an
// ICMP host unreachable that quotes the echo request. An error quoting
// the request is not its reply, so that probe times out too.
var icmpDests = []icmpDest{
	{
		name: "routed and silent", host: 1,
		lbRoute: "via", beRoute: "blackhole",
		want: "; read timed out: ", cause: "i/o timeout",
	},
	{
		name: "no route", host: 2,
		want: "; write failed: ", cause: "network is unreachable",
	},
	{
		name: "unreachable route", host: 3,
		lbRoute: "unreachable",
		want:    "; write failed: ", cause: "no route to host",
	},
	{
		name: "host unreachable from the backend", host: 4,
		lbRoute: "via", beRoute: "unreachable",
		want: "; read timed out: ", cause: "i/o timeout",
		icmpError: true,
	},
}

// unreachableAddr returns the address, of family f, of the destination
// numbered host: in 192.0.2.0/24 or 2001:db8:ff::/64, which exist only in
// the test's namespaces.
func unreachableAddr(f netFamily, host int) netip.Addr {
	if f == fam4 {
		return netip.AddrFrom4([4]byte{192, 0, 2, byte(host)})
	}
	return netip.MustParseAddr(fmt.Sprintf("2001:db8:ff::%d", host))
}

// routeICMPDests sets up the routes of icmpDests for family f, and makes
// the backend forward, so that it answers for the destinations it routes.
func routeICMPDests(t *testing.T, pair *nsPair, f netFamily) {
	t.Helper()
	forward := map[netFamily]string{
		fam4: "net.ipv4.conf.all.forwarding",
		fam6: "net.ipv6.conf.all.forwarding",
	}
	pair.backend.sysctl(t, forward[f], "1")
	for _, d := range icmpDests {
		dst := hostPrefix(unreachableAddr(f, d.host))
		switch d.lbRoute {
		case "":
		case "via":
			pair.lb.ip(t, f.flag, "route", "add", dst,
				"via", f.backend.String(), "dev", pair.lbLink)
			pair.backend.ip(t, f.flag, "route", "add", d.beRoute, dst)
		default:
			pair.lb.ip(t, f.flag, "route", "add", d.lbRoute, dst)
		}
	}
}

// icmpOutDestUnreachs returns how many ICMP destination unreachable
// messages of family f the namespace ns has sent.
func icmpOutDestUnreachs(t *testing.T, ns *netns, f netFamily) int {
	t.Helper()
	var n int
	err := ns.do(func() error {
		var err error
		if f == fam4 {
			n, err = snmpCounter("/proc/thread-self/net/snmp",
				"Icmp:", "OutDestUnreachs")
		} else {
			n, err = snmpCounter("/proc/thread-self/net/snmp6",
				"", "Icmp6OutDestUnreachs")
		}
		return err
	})
	if err != nil {
		t.Fatalf("reading the ICMP counters of %s: %v", ns.name, err)
	}
	return n
}

// snmpCounter reads the counter name from a /proc/net/snmp file: from the
// table whose lines start with table (a line of names, then a line of
// values), or, when table is empty, from the "name value" lines of
// /proc/net/snmp6.
func snmpCounter(path, table, name string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case table == "" && len(fields) == 2 && fields[0] == name:
			return strconv.Atoi(fields[1])
		case table != "" && fields[0] == table && names == nil:
			names = fields
		case table != "" && fields[0] == table:
			if i := slices.Index(names, name); i > 0 && i < len(fields) {
				return strconv.Atoi(fields[i])
			}
		}
	}
	return 0, fmt.Errorf("no counter %s in %s", name, path)
}

// TestICMPUnreachable pings, over IPv4 and IPv6, from a namespace the
// test created, the destinations of icmpDests, over a raw socket and over
// a ping socket. Each probe must fail as its destination calls for: the
// silent ones by timing out, the ones the lb's own routing rejects at
// once, in the write, naming the error. The backend must have sent the
// ICMP errors the destinations call for, so that the probe that times out
// in spite of one was shown one.
func TestICMPUnreachable(t *testing.T) {
	requireNetns(t)
	pair := newNSPair(t)
	sockets := []struct{ name, pingGroups, wantSocket string }{
		{"raw socket", pingGroupsNone, "raw"},
		{"ping socket", pingGroupsAll, "ping"},
	}
	families := pair.families()
	var probes []netnsProbe
	for _, f := range families {
		routeICMPDests(t, pair, f)
		for _, d := range icmpDests {
			for _, s := range sockets {
				ap := netip.AddrPortFrom(unreachableAddr(f, d.host), 0)
				cfg := testConfig(t, messages.CheckerICMP, ap,
					func(c *messages.Config) { c.Timeout = silentTimeout })
				probes = append(probes,
					netnsProbe{Config: cfg, PingGroups: s.pingGroups})
			}
		}
	}
	before := map[netFamily]int{}
	for _, f := range families {
		before[f] = icmpOutDestUnreachs(t, pair.backend, f)
	}
	outcomes := probeInNetns(t, pair.lb, probes)

	i := 0
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			var wantErrors int
			for _, d := range icmpDests {
				prefix := "ICMP ping to host " + unreachableAddr(f, d.host).String()
				for _, s := range sockets {
					o := outcomes[i]
					i++
					t.Run(d.name+"/"+s.name, func(t *testing.T) {
						t.Logf("socket %s: %q after %v",
							o.Socket, o.Result.Message, o.Elapsed)
						if o.Socket != s.wantSocket {
							t.Errorf("socket = %s, want %s", o.Socket, s.wantSocket)
						}
						checkResult(t, o.Result, false, prefix+d.want)
						checkResult(t, o.Result, false, d.cause)
						if o.Elapsed > silentTimeout+lateness {
							t.Errorf("probe took %v, want at most %v",
								o.Elapsed, silentTimeout+lateness)
						}
					})
					if d.icmpError {
						wantErrors++
					}
				}
			}
			sent := icmpOutDestUnreachs(t, pair.backend, f) - before[f]
			if sent < wantErrors {
				t.Errorf("backend sent %d ICMP destination unreachables, "+
					"want at least %d", sent, wantErrors)
			}
		})
	}
	pair.reportMissingFamilies(t)
}
