//go:build linux

package probe

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/lbhealth/hcsupervisor/messages"
)

// netFamily is an address family of the namespaces the tests build, with
// its addresses. They are documentation prefixes (RFC 5737 and RFC 3849)
// and exist only inside those namespaces: the prober's namespace has a
// veth pair to the backend's namespace and nothing else, so no packet of
// these tests can leave them.
type netFamily struct {
	name string // "ipv4" or "ipv6"
	flag string // the ip command's flag for the family
	// lb is the prober's end of the veth pair, backend the backend's.
	lb, backend netip.Addr
	bits        int // the prefix length of the veth pair's addresses
	// vip is on the backend's loopback, as a DSR backend holds its VIP.
	// The prober's namespace routes it only for packets marked
	// steerMark.
	vip netip.Addr
}

// fam4 and fam6 are the families of the test network.
var (
	fam4 = netFamily{
		name:    "ipv4",
		flag:    "-4",
		lb:      netip.MustParseAddr("198.51.100.1"),
		backend: netip.MustParseAddr("198.51.100.2"),
		bits:    30,
		vip:     netip.MustParseAddr("203.0.113.10"),
	}
	fam6 = netFamily{
		name:    "ipv6",
		flag:    "-6",
		lb:      netip.MustParseAddr("2001:db8:100::1"),
		backend: netip.MustParseAddr("2001:db8:100::2"),
		bits:    64,
		vip:     netip.MustParseAddr("2001:db8:203::10"),
	}
)

// prefix returns a as an address with the family's veth prefix length.
func (f netFamily) prefix(a netip.Addr) string {
	return netip.PrefixFrom(a, f.bits).String()
}

// hostPrefix returns a as a host route's prefix.
func hostPrefix(a netip.Addr) string {
	return netip.PrefixFrom(a, a.BitLen()).String()
}

const (
	// steerMark is the socket mark the policy route steers: the first
	// mark of Seesaw's DSR pool, 1<<16.
	steerMark = 0x10000
	// steerTable is the routing table of marked packets.
	steerTable = "100"
	// ipTimeout bounds one run of the ip command.
	ipTimeout = 10 * time.Second
	// helperTimeout bounds the helper process that probes from inside a
	// namespace, start-up included.
	helperTimeout = 30 * time.Second
)

// requireNetns skips the test, saying why, unless the process may build
// network namespaces: it must run as root and find the ip command.
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating network namespaces needs root " +
			"(CAP_SYS_ADMIN and CAP_NET_ADMIN); CI runs as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("the ip command (Debian package iproute2) is missing: %v", err)
	}
}

// netns is a network namespace that a test created with `ip netns add`;
// the test's cleanup deletes it.
type netns struct {
	name string
}

// newNetns creates the namespace name with its loopback up, or skips the
// test if this environment cannot (a container without CAP_SYS_ADMIN, for
// one).
func newNetns(t *testing.T, name string) *netns {
	t.Helper()
	out, err := runIP("netns", "add", name)
	if err != nil {
		t.Skipf("cannot create network namespace %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		// Deleting a namespace deletes its ends of the veth pairs.
		if out, err := runIP("netns", "del", name); err != nil {
			t.Errorf("deleting network namespace %s: %v: %s", name, err, out)
		}
	})
	n := &netns{name: name}
	n.ip(t, "link", "set", "lo", "up")
	return n
}

// runIP runs the ip command with args and returns its combined output.
func runIP(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// run runs `ip -n <namespace> args...`.
func (n *netns) run(args ...string) error {
	out, err := runIP(append([]string{"-n", n.name}, args...)...)
	if err != nil {
		return fmt.Errorf("ip -n %s %s: %v: %s",
			n.name, strings.Join(args, " "), err, out)
	}
	return nil
}

// ip runs `ip -n <namespace> args...`. A failure that says the kernel or
// the environment lacks a feature (veth, policy routing) skips the test;
// any other fails it.
func (n *netns) ip(t *testing.T, args ...string) {
	t.Helper()
	err := n.run(args...)
	if err == nil {
		return
	}
	for _, lacking := range []string{
		"Operation not permitted", "Permission denied",
		"not supported", "Unknown device type",
	} {
		if strings.Contains(err.Error(), lacking) {
			t.Skip("this environment cannot build the test network:", err)
		}
	}
	t.Fatal(err)
}

// waitUp waits until link is up and running. A link set up carries
// nothing until the kernel's link watcher has seen its carrier, up to a
// second later; a neighbour solicitation sent before then is lost, and
// the next one waits a second more.
func (n *netns) waitUp(t *testing.T, link string) {
	t.Helper()
	var out string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		out, err = runIP("-n", n.name, "-o", "link", "show", "dev", link)
		if err != nil {
			t.Fatalf("ip -n %s link show dev %s: %v: %s", n.name, link, err, out)
		}
		if strings.Contains(out, " state UP ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("link %s in %s not up after 5s: %s", link, n.name, out)
}

// do runs fn on an OS thread inside the namespace and returns its error.
// The thread never leaves the namespace and never runs another goroutine:
// it stays locked and ends with fn's goroutine. Sockets that fn opens
// belong to the namespace for their whole life, whichever thread later
// uses them; goroutines that fn starts run outside it, so fn must open
// its sockets itself.
func (n *netns) do(fn func() error) error {
	return onOwnThread(func() error {
		f, err := os.Open("/run/netns/" + n.name)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("entering network namespace %s: %w",
				n.name, err)
		}
		return fn()
	})
}

// sysctl sets the network sysctl key (e.g. "net.ipv4.ping_group_range")
// inside the namespace: /proc/sys/net shows the namespace of the thread
// that opens it.
func (n *netns) sysctl(t *testing.T, key, value string) {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	err := n.do(func() error {
		return os.WriteFile(path, []byte(value), 0)
	})
	if err != nil {
		t.Fatalf("setting %s=%s in %s: %v", key, value, n.name, err)
	}
}

// nsPair is two namespaces that a test created, joined by a veth pair:
// lb, where the probes run (the load balancer), and backend. Neither has
// any other link, so traffic between them is all the traffic there is.
type nsPair struct {
	lb, backend    *netns
	lbLink, beLink string // the two ends of the veth pair
	// noV6 says why the pair has no IPv6 addresses, if it has none.
	noV6 error
}

// newNSPair builds the two namespaces, hc-test-<random> and
// hc-test-<random>-be, and the veth pair between them, with the addresses
// of fam4 and, if the kernel has IPv6, of fam6.
func newNSPair(t *testing.T) *nsPair {
	t.Helper()
	id := randomID()
	p := &nsPair{
		lb:      newNetns(t, "hc-test-"+id),
		backend: newNetns(t, "hc-test-"+id+"-be"),
		lbLink:  "hc" + id + "lb",
		beLink:  "hc" + id + "be",
	}

	// Links created from now on use their addresses at once, the
	// link-local ones too: neighbour discovery waits for those.
	p.noV6 = p.noDAD()

	// Created inside the lb namespace with its peer in the backend's,
	// so no end of it ever exists in the test's own namespace.
	p.lb.ip(t, "link", "add", p.lbLink, "type", "veth",
		"peer", "name", p.beLink, "netns", p.backend.name)
	p.lb.ip(t, "addr", "add", fam4.prefix(fam4.lb), "dev", p.lbLink)
	p.backend.ip(t, "addr", "add", fam4.prefix(fam4.backend), "dev", p.beLink)
	if p.noV6 == nil {
		p.noV6 = p.addV6()
	}
	p.lb.ip(t, "link", "set", p.lbLink, "up")
	p.backend.ip(t, "link", "set", p.beLink, "up")
	p.lb.waitUp(t, p.lbLink)
	p.backend.waitUp(t, p.beLink)

	// A reply from the VIP comes back on a link whose reverse route
	// exists only for marked packets: reverse-path filtering would drop
	// it, as it would on a DSR load balancer. (IPv6 has none.)
	p.lb.sysctl(t, "net.ipv4.conf.all.rp_filter", "0")
	p.lb.sysctl(t, "net.ipv4.conf."+p.lbLink+".rp_filter", "0")
	return p
}

// randomID returns six random hex digits, which name a test's
// namespaces and links apart from any other test's.
func randomID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// noDAD turns off IPv6 duplicate address detection for the links that
// are yet to be made in both namespaces, or says why it cannot (a kernel
// without IPv6, for one).
func (p *nsPair) noDAD() error {
	const key = "/proc/sys/net/ipv6/conf/default/accept_dad"
	for _, ns := range []*netns{p.lb, p.backend} {
		err := ns.do(func() error { return os.WriteFile(key, []byte("0"), 0) })
		if err != nil {
			return fmt.Errorf("in %s: %w", ns.name, err)
		}
	}
	return nil
}

// addV6 gives the veth pair the addresses of fam6, usable at once (no
// duplicate address detection).
func (p *nsPair) addV6() error {
	if err := p.lb.run("addr", "add", fam6.prefix(fam6.lb),
		"dev", p.lbLink, "nodad"); err != nil {
		return err
	}
	return p.backend.run("addr", "add", fam6.prefix(fam6.backend),
		"dev", p.beLink, "nodad")
}

// families returns the address families the pair has.
func (p *nsPair) families() []netFamily {
	if p.noV6 != nil {
		return []netFamily{fam4}
	}
	return []netFamily{fam4, fam6}
}

// reportMissingFamilies adds a skipped subtest, saying why, for each
// family the pair lacks.
func (p *nsPair) reportMissingFamilies(t *testing.T) {
	t.Helper()
	if p.noV6 != nil {
		t.Run(fam6.name, func(t *testing.T) {
			t.Skip("no IPv6 in the test namespaces:", p.noV6)
		})
	}
}

// steer holds f's VIP on the backend's loopback and routes the lb's
// packets to the VIP through the veth pair when, and only when, they carry
// steerMark: the policy route stands in for the IPVS firewall-mark
// service that Seesaw's Engine sets up.
func (p *nsPair) steer(t *testing.T, f netFamily) {
	t.Helper()
	p.backend.ip(t, "addr", "add", hostPrefix(f.vip), "dev", "lo")
	p.lb.ip(t, f.flag, "rule", "add", "fwmark", fmt.Sprintf("%#x", steerMark),
		"table", steerTable, "pref", "100")
	p.lb.ip(t, f.flag, "route", "add", hostPrefix(f.vip), "via", f.backend.String(),
		"dev", p.lbLink, "table", steerTable)
}

// vipBackends are the servers a test runs on the VIP inside the backend
// namespace, with the requests each has answered: plain TCP and TCP in
// TLS, HTTP and HTTPS, UDP, DNS and RADIUS.
type vipBackends struct {
	tcp, tls, http, https, udp, dns, radius     netip.AddrPort
	tcpN, tlsN, httpN, httpsN, udpN, dnsN, radN atomic.Int32
}

// vipSockets are the sockets of vipBackends, opened inside the backend's
// namespace.
type vipSockets struct {
	tcp, tls, http, https net.Listener
	udp, dns, radius      net.PacketConn
}

// listenVIP opens every socket of vipSockets on vip inside ns, or fails
// the test having closed those it opened.
func listenVIP(t *testing.T, ns *netns, vip netip.Addr) *vipSockets {
	t.Helper()
	s := &vipSockets{}
	lns := []*net.Listener{&s.tcp, &s.tls, &s.http, &s.https}
	pcs := []*net.PacketConn{&s.udp, &s.dns, &s.radius}
	addr := netip.AddrPortFrom(vip, 0).String()
	err := ns.do(func() error {
		var err error
		for _, ln := range lns {
			if *ln, err = net.Listen("tcp", addr); err != nil {
				return err
			}
		}
		for _, pc := range pcs {
			if *pc, err = net.ListenPacket("udp", addr); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		return s
	}
	for _, ln := range lns {
		if *ln != nil {
			(*ln).Close()
		}
	}
	for _, pc := range pcs {
		if *pc != nil {
			(*pc).Close()
		}
	}
	t.Fatalf("listening on the VIP in %s: %v", ns.name, err)
	return nil
}

// startVIPBackends starts vipBackends on f's VIP inside ns. The RADIUS
// server expects requests from f's lb address. Each server counts what
// it answers; cleanup stops them.
func startVIPBackends(t *testing.T, ns *netns, f netFamily) *vipBackends {
	t.Helper()
	s := listenVIP(t, ns, f.vip)
	b := &vipBackends{}
	b.tcp = serveTCP(t, s.tcp, func(c net.Conn) {
		b.tcpN.Add(1)
		pong(c)
	}).addr
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{selfSignedCert(t)}}
	b.tls = serveTCP(t, tls.NewListener(s.tls, tlsCfg), func(c net.Conn) {
		if c.(*tls.Conn).Handshake() == nil {
			b.tlsN.Add(1)
		}
		helloTLS(c)
	}).addr
	b.http = serveVIPHTTP(t, s.http, false, &b.httpN)
	b.https = serveVIPHTTP(t, s.https, true, &b.httpsN)

	b.udp = serveUDPConn(t, s.udp, func(d []byte) []byte {
		b.udpN.Add(1)
		return udpPong(d)
	})
	rad := newRADIUSServer(t, testPassword, f.lb)
	b.radius = serveUDPConn(t, s.radius, func(d []byte) []byte {
		out := rad.answer(d)
		if out != nil {
			b.radN.Add(1)
		}
		return out
	})

	zone := newTestZone()
	startDNSServer(t, &dns.Server{
		PacketConn: s.dns,
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			b.dnsN.Add(1)
			zone.ServeDNS(w, r)
		}),
	})
	b.dns = addrPort(t, s.dns.LocalAddr())
	return b
}

// serveVIPHTTP serves "hello world" on ln, in TLS if secure, counting
// the requests in n. Cleanup stops the server.
func serveVIPHTTP(
	t *testing.T, ln net.Listener, secure bool, n *atomic.Int32,
) netip.AddrPort {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(
		func(w http.ResponseWriter, _ *http.Request) {
			n.Add(1)
			_, _ = io.WriteString(w, "hello world")
		}))
	srv.Listener.Close()
	srv.Listener = ln
	if secure {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return addrPort(t, ln.Addr())
}

// serveUDPConn answers each datagram on pc as serveUDP does. Cleanup
// closes pc and waits for the server's goroutine.
func serveUDPConn(
	t *testing.T, pc net.PacketConn, answer func([]byte) []byte,
) netip.AddrPort {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := answer(buf[:n]); out != nil {
				_, _ = pc.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return addrPort(t, pc.LocalAddr())
}

// steering is how TestMarkSteersProbe marks a probe, and whether the
// mark should take it to the backend.
type steering struct {
	name      string
	mode      messages.Mode
	mark      int
	wantReach bool
}

// steerings are the markings of TestMarkSteersProbe: the right mark in
// both modes that use one, no mark, and another mark.
var steerings = []steering{
	{"dsr marked", messages.ModeDSR, steerMark, true},
	{"tun marked", messages.ModeTUN, steerMark, true},
	{"unmarked", messages.ModePlain, 0, false},
	{"dsr wrong mark", messages.ModeDSR, steerMark + 1, false},
}

// vipChecker is a checker that TestMarkSteersProbe runs against one of
// the vipBackends.
type vipChecker struct {
	name    string // the subtest's, e.g. "https"
	checker messages.CheckerType
	target  netip.AddrPort
	edit    func(*messages.Config) // sets the checker's own fields
	served  *atomic.Int32          // probes the backend answered
}

// checkers returns a checker of each of b's servers. The TLS ones do not
// verify the test's self-signed certificate.
func (b *vipBackends) checkers() []vipChecker {
	return []vipChecker{
		{"tcp", messages.CheckerTCP, b.tcp, func(c *messages.Config) {
			c.Send, c.Receive = "PING\r\n", "+PONG"
		}, &b.tcpN},
		{"tls", messages.CheckerTCP, b.tls, func(c *messages.Config) {
			c.Secure, c.Receive = true, "hello"
		}, &b.tlsN},
		{"http", messages.CheckerHTTP, b.http, func(c *messages.Config) {
			c.Path, c.Response = "/healthz", "hello"
		}, &b.httpN},
		{"https", messages.CheckerHTTP, b.https, func(c *messages.Config) {
			c.Secure, c.Path, c.Response = true, "/healthz", "hello"
		}, &b.httpsN},
		{"udp", messages.CheckerUDP, b.udp, func(c *messages.Config) {
			c.Send, c.Receive = "ping", "pong"
		}, &b.udpN},
		{"dns", messages.CheckerDNS, b.dns, func(c *messages.Config) {
			c.Query = "a.example.test"
			c.ExpectedIPs = []netip.Addr{netip.MustParseAddr("192.0.2.2")}
		}, &b.dnsN},
		{"radius", messages.CheckerRADIUS, b.radius, func(c *messages.Config) {
			c.Password = testPassword
		}, &b.radN},
	}
}

// steeredConfig returns the config, numbered id, of a probe by ck of
// family f marked as s says.
func steeredConfig(
	t *testing.T, id int, f netFamily, ck vipChecker, s steering,
) messages.Config {
	t.Helper()
	return testConfig(t, ck.checker, ck.target, func(c *messages.Config) {
		ck.edit(c)
		c.ID = uint64(id)
		c.Mode, c.Mark = s.mode, s.mark
		if s.mode != messages.ModePlain {
			c.Backend = f.backend
		}
	})
}

// TestMarkSteersProbe runs the tcp, http, udp, dns and radius probers,
// and tcp and http in TLS, over IPv4 and IPv6, from a namespace whose only
// route to the VIP is a policy route for packets marked steerMark, to
// backends on the VIP in another namespace. Marked probes in DSR and TUN
// modes must reach the backends and succeed; unmarked and wrongly marked
// probes must find no route, and the backends must see only the marked
// ones. So the mark, set by the
// prober on its socket, is what steers each probe, as IPVS steers
// Seesaw's DSR and TUN health checks.
func TestMarkSteersProbe(t *testing.T) {
	requireNetns(t)
	checkNoLeaks(t)
	pair := newNSPair(t)

	// Every probe, of every family, runs in one helper process.
	type steered struct {
		fam       netFamily
		name      string
		wantReach bool
	}
	var probes []netnsProbe
	var cases []steered
	checkers := map[netFamily][]vipChecker{}
	for _, f := range pair.families() {
		pair.steer(t, f)
		checkers[f] = startVIPBackends(t, pair.backend, f).checkers()
		for _, ck := range checkers[f] {
			for _, s := range steerings {
				cfg := steeredConfig(t, len(probes)+1, f, ck, s)
				probes = append(probes, netnsProbe{Config: cfg})
				name := ck.name + " " + s.name
				cases = append(cases, steered{f, name, s.wantReach})
			}
		}
	}
	outcomes := probeInNetns(t, pair.lb, probes)

	for _, f := range pair.families() {
		t.Run(f.name, func(t *testing.T) {
			for i, tc := range cases {
				if tc.fam == f {
					t.Run(tc.name, func(t *testing.T) {
						checkSteered(t, outcomes[i].Result, tc.wantReach)
					})
				}
			}
			checkServed(t, checkers[f])
		})
	}
	pair.reportMissingFamilies(t)
}

// checkSteered checks the result of a probe that the policy route should
// have taken to its backend if wantReach, and left without a route if not.
func checkSteered(t *testing.T, got messages.ProbeResult, wantReach bool) {
	t.Helper()
	t.Log(got.Message)
	if wantReach {
		checkResult(t, got, true, "")
		return
	}
	checkResult(t, got, false, "network is unreachable")
}

// checkServed checks that each checker's backend answered one probe for
// each steering that reaches it, and no more.
func checkServed(t *testing.T, checkers []vipChecker) {
	t.Helper()
	var want int32
	for _, s := range steerings {
		if s.wantReach {
			want++
		}
	}
	for _, ck := range checkers {
		if got := ck.served.Load(); got != want {
			t.Errorf("%s backend answered %d probes, want %d (the marked ones)",
				ck.name, got, want)
		}
	}
}

// testMarkWithoutNetAdminProcess runs the probes of
// TestMarkWithoutNetAdmin in a helper process, in a namespace of its own,
// started without CAP_NET_ADMIN, and without CAP_NET_RAW, which lets Linux
// 5.17 and later set SO_MARK too. Each must fail, naming CAP_NET_ADMIN.
func testMarkWithoutNetAdminProcess(t *testing.T) {
	requireNetns(t)
	ns := newNetns(t, "hc-test-"+randomID())
	cfgs := withoutNetAdminConfigs(t, netip.MustParseAddrPort("127.0.0.1:9"))
	names := slices.Sorted(maps.Keys(cfgs))
	probes := make([]netnsProbe, len(names))
	for i, name := range names {
		probes[i] = netnsProbe{Config: cfgs[name]}
	}
	caps := []int{unix.CAP_NET_ADMIN, unix.CAP_NET_RAW}
	outcomes := probeInNetnsWithout(t, ns, caps, probes)
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			checkResult(t, outcomes[i].Result, false, wantNoNetAdmin)
		})
	}
}
