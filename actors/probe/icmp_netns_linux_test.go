//go:build linux

package probe

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbhealth/hcsupervisor/messages"
)

// Values of net.ipv4.ping_group_range: no group may open a ping socket
// (the kernel's default), or every group may.
const (
	pingGroupsNone = "1 0"
	pingGroupsAll  = "0 2147483647"
)

// icmpRun is one ICMP probe run inside a namespace.
type icmpRun struct {
	// socket is the kind of socket openEcho gave the probing thread:
	// "raw", "ping" or "none".
	socket  string
	result  messages.ProbeResult
	elapsed time.Duration
}

// probeICMPIn runs p once on a thread inside ns, after dropping
// CAP_NET_RAW from that thread if dropRaw, and says which kind of socket
// the thread could open. The ICMP prober opens its socket in the calling
// goroutine, so the whole probe stays in the namespace.
func probeICMPIn(
	t *testing.T, ns *netns, p Prober, v6, dropRaw bool,
) icmpRun {
	t.Helper()
	var run icmpRun
	err := ns.do(func() error {
		if dropRaw {
			if err := dropCaps(unix.CAP_NET_RAW); err != nil {
				return err
			}
		}
		sock, err := openEcho(v6)
		switch {
		case errors.Is(err, ErrNoICMPSocket):
			run.socket = "none"
		case err != nil:
			return err
		case sock.raw:
			run.socket = "raw"
		default:
			run.socket = "ping"
		}
		if sock != nil {
			sock.conn.Close()
		}

		// As the check actor does: no deadline but the config's Timeout.
		start := time.Now()
		run.result = p.Probe(t.Context())
		run.elapsed = time.Since(start)
		return nil
	})
	if err != nil {
		t.Fatalf("probing from %s: %v", ns.name, err)
	}
	return run
}

// dropCaps removes caps from the calling thread's effective set.
func dropCaps(caps ...int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	for _, c := range caps {
		data[c/32].Effective &^= 1 << (c % 32)
	}
	return unix.Capset(&hdr, &data[0])
}

// TestICMPSilentHost pings, from one namespace the test created, the
// backend in another over a veth pair, over IPv4 and IPv6: first while
// the backend answers, then with icmp_echo_ignore_all set there, so it
// stays silent. The silent probe must fail, saying it timed out, by its
// Timeout plus lateness, and leave no goroutine. It runs over a raw
// socket, over an unprivileged ping socket (ping_group_range opened in
// the prober's namespace, CAP_NET_RAW dropped from the probing thread),
// and with neither, where every probe must fail with ErrNoICMPSocket's
// message.
func TestICMPSilentHost(t *testing.T) {
	requireNetns(t)
	pair := newNSPair(t)
	sockets := []struct {
		name       string
		pingGroups string // ping_group_range in the prober's namespace
		dropRaw    bool   // drop CAP_NET_RAW from the probing thread
		wantSocket string // what openEcho gives: raw, ping or none
	}{
		{"raw socket", pingGroupsNone, false, "raw"},
		{"ping socket without CAP_NET_RAW", pingGroupsAll, true, "ping"},
		{"ping socket preferred", pingGroupsAll, false, "ping"},
		{"no socket", pingGroupsNone, true, "none"},
	}
	ignoreAll := map[family]string{
		v4: "net.ipv4.icmp_echo_ignore_all",
		v6: "net.ipv6.icmp.echo_ignore_all",
	}
	for _, f := range []family{v4, v6} {
		t.Run(f.name, func(t *testing.T) {
			pair.requireFamily(t, f)
			for _, tc := range sockets {
				t.Run(tc.name, func(t *testing.T) {
					checkNoLeaks(t)
					// The one range governs ping sockets of both families.
					pair.lb.sysctl(t, "net.ipv4.ping_group_range", tc.pingGroups)
					cfg := testConfig(t, messages.CheckerICMP,
						netip.AddrPortFrom(f.backend, 0),
						func(c *messages.Config) { c.Timeout = silentTimeout })
					p := mustNew(t, &cfg)
					prefix := "ICMP ping to host " + f.backend.String()

					for _, silent := range []bool{false, true} {
						ignore := "0"
						if silent {
							ignore = "1"
						}
						pair.backend.sysctl(t, ignoreAll[f], ignore)

						run := probeICMPIn(t, pair.lb, p, f == v6, tc.dropRaw)
						t.Logf("silent=%v, socket %s: %q after %v",
							silent, run.socket, run.result.Message, run.elapsed)
						if run.socket != tc.wantSocket {
							t.Errorf("socket = %s, want %s",
								run.socket, tc.wantSocket)
						}
						switch {
						case tc.wantSocket == "none":
							checkResult(t, run.result, false,
								ErrNoICMPSocket.Error())
						case silent:
							checkResult(t, run.result, false,
								prefix+"; read timed out")
						default:
							checkResult(t, run.result, true, prefix)
						}
						if run.elapsed > silentTimeout+lateness {
							t.Errorf("probe took %v, want at most %v",
								run.elapsed, silentTimeout+lateness)
						}
					}
				})
			}
		})
	}
}
