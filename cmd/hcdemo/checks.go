package main

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
)

// Probe settings shared by the demo's checks.
const (
	fastInterval = 1 * time.Second
	slowInterval = 2 * time.Second
	probeTimeout = 1 * time.Second
	probeRetries = 1
)

// loopback is the address of every backend, and the target of the icmp
// check.
var loopback = netip.MustParseAddr("127.0.0.1")

// demoCheck is one check of the demo, as the Engine's cluster config
// describes it, with a short name for people, what it probes as the
// server will run it, and what a newcomer should expect it to show.
type demoCheck struct {
	Name   string
	Desc   string // set by newPlan, e.g. "http GET /healthz 127.0.0.1:8080"
	Expect string
	Check  enginesim.Check
}

// demoPlan is what the simulated Engine serves: Initial from the start;
// from the halfway change on, Initial without the check named Remove and
// with Add.
type demoPlan struct {
	Initial []demoCheck
	Remove  string
	Add     demoCheck
}

// Changed returns the checks served after the halfway change.
func (pl demoPlan) Changed() []demoCheck {
	checks := slices.DeleteFunc(slices.Clone(pl.Initial), func(c demoCheck) bool {
		return c.Name == pl.Remove
	})
	return append(checks, pl.Add)
}

// All returns every check the demo ever serves.
func (pl demoPlan) All() []demoCheck {
	return append(slices.Clone(pl.Initial), pl.Add)
}

// newPlan returns the demo's checks of b, described as the server will
// run them. The flapping backend turns every flapPeriod. It fails when
// the server would reject a check: a bug in the demo.
func newPlan(b *backends, flapPeriod time.Duration) (demoPlan, error) {
	echo := check(enginesim.TypeTCP, b.Echo, fastInterval)
	echo.Send, echo.Receive = "PING\r\n", "PING"
	udp := check(enginesim.TypeUDP, b.UDPEcho, fastInterval)
	udp.Send, udp.Receive = "PING", "PING"
	rad := check(enginesim.TypeRADIUS, b.RADIUS, slowInterval)
	rad.Send = radiusUser + ":" + radiusPassword + ":" + radiusSecret
	rad.Receive = messages.RADIUSAccept
	// TLSVerify false: the certificate is self-signed.
	https := httpCheck(enginesim.TypeHTTPS, b.HTTPS)
	https.TLSVerify = new(false)
	tlsCheck := check(enginesim.TypeTCPTLS, b.HTTPS, fastInterval)
	tlsCheck.TLSVerify = new(false)

	pl := demoPlan{
		Initial: []demoCheck{
			{Name: "tcp-echo", Expect: "healthy: echoes PING", Check: echo},
			{Name: "tcp-refused", Expect: "unhealthy: connection refused",
				Check: check(enginesim.TypeTCP, b.Refused, fastInterval)},
			{Name: "http-ok", Expect: "healthy: 200 ok",
				Check: httpCheck(enginesim.TypeHTTP, b.HTTPOK)},
			{Name: "http-503", Expect: "unhealthy: 503",
				Check: httpCheck(enginesim.TypeHTTP, b.HTTPDown)},
			{Name: "http-flap",
				Expect: fmt.Sprintf("flaps: 200 then 500, %v each", flapPeriod),
				Check:  httpCheck(enginesim.TypeHTTP, b.HTTPFlap)},
			{Name: "https-self-signed",
				Expect: "healthy: 200 ok, tls_verify false", Check: https},
			{Name: "dns-ok", Expect: "healthy: A " + demoAddr.String(),
				Check: dnsCheck(b.DNS, demoAddr)},
			{Name: "dns-wrong-ip", Expect: "unhealthy: expects " +
				wrongAddr.String(), Check: dnsCheck(b.DNS, wrongAddr)},
			{Name: "udp-echo", Expect: "healthy: echoes PING", Check: udp},
			{Name: "radius-ok", Expect: "healthy: Access-Accept", Check: rad},
			{Name: "icmp-loopback",
				Expect: "healthy, or unhealthy without CAP_NET_RAW",
				Check: check(enginesim.TypeICMP,
					netip.AddrPortFrom(loopback, 0), slowInterval)},
		},
		Remove: "http-503",
		Add: demoCheck{Name: "tls-handshake",
			Expect: "healthy: TLS handshake, tls_verify false", Check: tlsCheck},
	}
	return pl, pl.describe()
}

// describe sets each check's Desc from the config the server runs for it,
// converted as the bridge converts the Engine's config.
func (pl *demoPlan) describe() error {
	checks := make([]*demoCheck, 0, len(pl.Initial)+1)
	for i := range pl.Initial {
		checks = append(checks, &pl.Initial[i])
	}
	checks = append(checks, &pl.Add)

	cs := make([]enginesim.Check, len(checks))
	for i, c := range checks {
		cs[i] = c.Check
	}
	configs, err := serverConfigs(cs)
	if err != nil {
		return err
	}
	for i, c := range checks {
		c.Desc = describe(configs[i])
	}
	return nil
}

// serverConfigs returns the config the server runs for each check: the
// wire config a scratch Engine builds for it, converted by the bridge.
func serverConfigs(checks []enginesim.Check) ([]messages.Config, error) {
	sim := enginesim.New(enginesim.Config{IDBase: 1, History: -1})
	u, err := sim.SetChecks(checks)
	if err != nil {
		return nil, fmt.Errorf("building the demo's checks: %w", err)
	}
	configs := make([]messages.Config, len(checks))
	for i, id := range u.IDs {
		configs[i], err = bridge.ToConfig(id, sim.Config(id))
		if err != nil {
			return nil, fmt.Errorf("converting check %d: %w", i, err)
		}
	}
	return configs, nil
}

// check returns a check of type typ for addr; icmp takes addr's port, 0.
func check(
	typ string, addr netip.AddrPort, interval time.Duration,
) enginesim.Check {
	return enginesim.Check{
		Type:     typ,
		IP:       addr.Addr().String(),
		Port:     int(addr.Port()),
		Interval: interval,
		Timeout:  probeTimeout,
		Retries:  probeRetries,
	}
}

// httpCheck returns an http or https check that expects GET /healthz on
// addr to answer 200 with a body starting "ok". As in Seesaw's config,
// Send is the request and Receive the body's prefix.
func httpCheck(typ string, addr netip.AddrPort) enginesim.Check {
	c := check(typ, addr, fastInterval)
	c.Method = http.MethodGet
	c.Send = "/healthz"
	c.Code = http.StatusOK
	c.Receive = "ok"
	return c
}

// dnsCheck returns a check that asks addr for the A records of demoName
// and expects want among them. As in Seesaw's config, Send is the
// question, Method its type and Receive the answer.
func dnsCheck(addr netip.AddrPort, want netip.Addr) enginesim.Check {
	c := check(enginesim.TypeDNS, addr, slowInterval)
	c.Send = demoName
	c.Method = "A"
	c.Receive = want.String()
	return c
}
