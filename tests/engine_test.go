package tests

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
)

// TestEngineCheckers has the simulated Engine serve a check of every
// checker type against loopback backends, in both deployments, and checks
// that each is fetched, converted, run, and reported to the Engine with
// the state its backend calls for and a message from the right prober.
func TestEngineCheckers(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode engineMode) {
		tcpUp := startTCP(t, false)
		web := startPathBackend(t)
		tlsAddr := startTLSBackend(t)
		answer := netip.MustParseAddr("127.0.0.10")
		dnsAddr := startDNS(t, map[string]netip.Addr{"www.example.test.": answer})
		udpAddr := startUDPBackend(t)
		radiusAddr := startRADIUSAuth(t, "probe", "s3cret", "shared")
		refused := refusedAddr(t)
		noVerify := false

		tests := []struct {
			name  string
			check enginesim.Check
			// want is the state the backend calls for.
			want    messages.State
			wantMsg string
			// lacks, if set, says why this machine cannot run the
			// probe: the check must then fail.
			lacks error
		}{
			{
				name:    "tcp",
				check:   engineCheck(enginesim.TypeTCP, tcpUp.addr),
				want:    healthy,
				wantMsg: "TCP connect to " + targetString(tcpUp.addr),
			},
			{
				name:    "tcp refused",
				check:   engineCheck(enginesim.TypeTCP, refused),
				want:    unhealthy,
				wantMsg: "refused",
			},
			{
				name: "tcp_tls",
				check: func() enginesim.Check {
					c := engineCheck(enginesim.TypeTCPTLS, tlsAddr)
					c.TLSVerify = &noVerify
					return c
				}(),
				want:    healthy,
				wantMsg: "TCP connect to " + targetString(tlsAddr),
			},
			{
				name: "http",
				check: func() enginesim.Check {
					c := engineCheck(enginesim.TypeHTTP, web.addr)
					c.Send, c.Receive = "/healthz", "OK backend"
					return c
				}(),
				want:    healthy,
				wantMsg: "HTTP GET to " + targetString(web.addr),
			},
			{
				name: "http 503",
				check: func() enginesim.Check {
					c := engineCheck(enginesim.TypeHTTP, web.addr)
					c.Send = "/down"
					return c
				}(),
				want:    unhealthy,
				wantMsg: "got 503",
			},
			{
				name: "http expecting 503",
				check: func() enginesim.Check {
					c := engineCheck(enginesim.TypeHTTP, web.addr)
					c.Send, c.Code = "/down", 503
					return c
				}(),
				want:    healthy,
				wantMsg: "got 503",
			},
			{
				// The request goes to the backend with the absolute URI.
				name: "http proxy",
				check: func() enginesim.Check {
					c := engineCheck(enginesim.TypeHTTP, web.addr)
					c.Send, c.Proxy = "http://www.example.test/healthz", true
					return c
				}(),
				want:    healthy,
				wantMsg: "HTTP GET to " + targetString(web.addr),
			},
			{
				name: "https",
				check: func() enginesim.Check {
					c := engineCheck(enginesim.TypeHTTPS, tlsAddr)
					c.Send, c.Receive = "/healthz", "OK backend"
					c.TLSVerify = &noVerify
					return c
				}(),
				want:    healthy,
				wantMsg: "HTTP GET to " + targetString(tlsAddr),
			},
			{
				name: "dns",
				check: func() enginesim.Check {
					c := engineCheck(enginesim.TypeDNS, dnsAddr)
					c.Send, c.Method, c.Receive = "www.example.test", "A", answer.String()
					return c
				}(),
				want:    healthy,
				wantMsg: "DNS www.example.test. IN A query to " + targetString(dnsAddr),
			},
			{
				name: "udp",
				check: func() enginesim.Check {
					c := engineCheck(enginesim.TypeUDP, udpAddr)
					c.Send, c.Receive = "ping", udpReply
					return c
				}(),
				want:    healthy,
				wantMsg: "UDP check to " + targetString(udpAddr),
			},
			{
				name: "radius",
				check: func() enginesim.Check {
					c := engineCheck(enginesim.TypeRADIUS, radiusAddr)
					c.Send = "probe:s3cret:shared"
					return c
				}(),
				want:    healthy,
				wantMsg: "RADIUS Access-Request to " + targetString(radiusAddr),
			},
			{
				name: "radius rejected",
				check: func() enginesim.Check {
					c := engineCheck(enginesim.TypeRADIUS, radiusAddr)
					c.Send = "probe:wrong:shared"
					return c
				}(),
				want:    unhealthy,
				wantMsg: "Access-Reject",
			},
			{
				name: "icmp",
				check: engineCheck(enginesim.TypeICMP,
					netip.AddrPortFrom(loopback, 0)),
				want:    healthy,
				wantMsg: "ICMP ping to host 127.0.0.1",
				lacks:   icmpUnavailable(),
			},
			{
				// The VIP and the backend are both loopback: the probe
				// needs CAP_NET_ADMIN for its mark, and reaches tcpUp.
				name: "tcp dsr",
				check: func() enginesim.Check {
					c := engineCheck(enginesim.TypeTCP, tcpUp.addr)
					c.Mode, c.Host = enginesim.ModeDSR, loopback.String()
					return c
				}(),
				want:    healthy,
				wantMsg: "TCP connect to " + targetString(tcpUp.addr),
				lacks:   markUnavailable(),
			},
		}
		for i, tt := range tests {
			if tt.lacks != nil {
				t.Logf("%s: this machine cannot run the probe (%v): "+
					"the check must fail", tt.name, tt.lacks)
				tests[i].want = unhealthy
			}
		}

		sim, sock := startEngine(t)
		var checks []enginesim.Check
		for _, tt := range tests {
			checks = append(checks, tt.check)
		}
		ids := setEngineChecks(t, sim, checks...)
		stack := mode.start(t, sock, stackOptions{})

		waitEngine(t, sim, "every check's first state", func(s *enginesim.Snapshot) bool {
			for i, tt := range tests {
				st, ok := s.States[ids[i]]
				if !ok || messages.State(st.State) != tt.want {
					return false
				}
			}
			return true
		})
		states := sim.States()
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				st := states[ids[i]]
				if got := messages.State(st.State); got != tt.want {
					t.Errorf("state = %v, want %v (message %q)", got, tt.want, st.Message)
				}
				if !strings.Contains(st.Message, tt.wantMsg) {
					t.Errorf("message = %q, want it to contain %q", st.Message, tt.wantMsg)
				}
				if st.LastCheck.IsZero() || st.Successes+st.Failures == 0 {
					t.Errorf("status = %+v, want a last check and counts", st)
				}
			})
		}

		// Every check was converted: the server runs exactly the
		// Engine's set, and nothing was rejected.
		truth := stack.truth(t)
		want := slices.Sorted(maps.Keys(sim.Configs()))
		if got := slices.Sorted(maps.Keys(truth)); !slices.Equal(got, want) {
			t.Errorf("server runs %v, want the Engine's %v", got, want)
		}

		// Fetching the same set again changes nothing: no check starts
		// over, so the Engine hears of each once (the periodic status
		// is off).
		fetches := sim.Counts().Healthchecks
		snap := waitEngine(t, sim, "more fetches", func(s *enginesim.Snapshot) bool {
			return s.Counts.Healthchecks >= fetches+3
		})
		for i, tt := range tests {
			if got := receivedOf(snap.Received, ids[i]); len(got) != 1 {
				t.Errorf("%s: the Engine heard of it %d times, want once",
					tt.name, len(got))
			}
		}
	})
}

// TestEngineRemovedCheckStops removes a check from the Engine's set and
// checks that its backend sees no more probes, that the Engine hears no
// more of it, and that the other check goes on.
func TestEngineRemovedCheckStops(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode engineMode) {
		kept := startTCP(t, false)
		removed := startTCP(t, false)
		keep := engineCheck(enginesim.TypeTCP, kept.addr)
		drop := engineCheck(enginesim.TypeTCP, removed.addr)

		sim, sock := startEngine(t)
		ids := setEngineChecks(t, sim, keep, drop)
		keepID, dropID := ids[0], ids[1]
		stack := mode.start(t, sock, stackOptions{NotifyInterval: 300 * time.Millisecond})
		waitEngine(t, sim, "both checks healthy",
			statesAre(map[uint64]messages.State{keepID: healthy, dropID: healthy}))

		if got := setEngineChecks(t, sim, keep); got[0] != keepID {
			t.Fatalf("the Engine renumbered the unchanged check: %d, want %d",
				got[0], keepID)
		}
		waitQuiet(t, "the removed check's backend to see no more probes",
			func() int { return int(removed.accepted.Load()) }, 3*checkInterval)
		quietAt := time.Now()

		got := slices.Collect(maps.Keys(stack.truth(t)))
		if !slices.Equal(got, []uint64{keepID}) {
			t.Errorf("server runs %v after the removal, want [%d]", got, keepID)
		}
		probes := kept.accepted.Load()
		eventually(t, waitTimeout, "the kept check to go on probing", func() bool {
			return kept.accepted.Load() > probes+2
		})

		// A periodic full status after the removal names the kept check
		// only.
		snap := waitEngine(t, sim, "a periodic status of the kept check",
			notifiedSince(quietAt, keepID))
		for _, r := range receivedOf(snap.Received, dropID) {
			if !r.At.Before(quietAt) {
				t.Errorf("the Engine heard of the removed check at %v, after it stopped at %v",
					r.At.Format("15:04:05.000"), quietAt.Format("15:04:05.000"))
			}
		}

		// An Engine with no checks at all answers with none: the last
		// check stops too.
		setEngineChecks(t, sim)
		waitQuiet(t, "the last check's backend to see no more probes",
			func() int { return int(kept.accepted.Load()) }, 3*checkInterval)
		if truth := stack.truth(t); len(truth) != 0 {
			t.Errorf("server runs %d checks, want none", len(truth))
		}
	})
}

// TestEngineChangedConfigApplies changes a check's config in the Engine,
// which gives it a new ID, and checks that the old ID's check stops, the
// new one reports its own state, and an unchanged check is left alone.
func TestEngineChangedConfigApplies(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode engineMode) {
		web := startPathBackend(t)
		up := startTCP(t, false)
		old := engineCheck(enginesim.TypeHTTP, web.addr)
		old.Send = "/down"
		same := engineCheck(enginesim.TypeTCP, up.addr)

		sim, sock := startEngine(t)
		ids := setEngineChecks(t, sim, old, same)
		oldID, sameID := ids[0], ids[1]
		stack := mode.start(t, sock, stackOptions{})
		waitEngine(t, sim, "the first states",
			statesAre(map[uint64]messages.State{oldID: unhealthy, sameID: healthy}))
		before := stack.truth(t)[sameID]

		changed := old
		changed.Send = "/up"
		ids = setEngineChecks(t, sim, changed, same)
		newID := ids[0]
		if newID == oldID || ids[1] != sameID {
			t.Fatalf("the Engine numbered the checks %v, want a new ID for the "+
				"changed one and %d for the other", ids, sameID)
		}

		waitEngine(t, sim, "the changed check's state under its new ID",
			statesAre(map[uint64]messages.State{newID: healthy, sameID: healthy}))
		waitQuiet(t, "the old config's probes to stop",
			func() int { return web.count("/down") }, 3*checkInterval)
		if web.count("/up") == 0 {
			t.Errorf("the new config's backend path saw no probe")
		}

		truth := stack.waitTruth(t, "the changed set",
			func(truth map[uint64]messages.Status) bool {
				_, hasOld := truth[oldID]
				return !hasOld && truth[newID].State == healthy
			})
		want := slices.Sorted(slices.Values([]uint64{newID, sameID}))
		if got := slices.Sorted(maps.Keys(truth)); !slices.Equal(got, want) {
			t.Errorf("server runs %v, want %v", got, want)
		}
		if st := truth[newID]; st.Failures != 0 || !strings.Contains(st.Message, "got 200") {
			t.Errorf("new check: status %+v, want a new check that never failed", st)
		}
		// The unchanged check kept its state machine and counters.
		if now := truth[sameID]; now.Successes <= before.Successes || now.Failures != 0 {
			t.Errorf("unchanged check: successes %d -> %d, failures %d; "+
				"want it to go on counting, never failed",
				before.Successes, now.Successes, now.Failures)
		}
		checkEngineHasTruth(t, sim, truth)
	})
}

// TestEnginePeriodicFullStatus checks that the Engine hears of every
// probed check every notify_interval although nothing changes, and never
// of a check whose first probe has not completed.
func TestEnginePeriodicFullStatus(t *testing.T) {
	const notifyInterval = 300 * time.Millisecond
	forEachMode(t, func(t *testing.T, mode engineMode) {
		up := startTCP(t, false)
		silent := startTCP(t, true)
		silentCheck := engineCheck(enginesim.TypeTCP, silent.addr)
		silentCheck.Interval, silentCheck.Timeout = time.Hour, time.Hour
		silentCheck.Send, silentCheck.Receive = "PING\r\n", "+PONG"

		sim, sock := startEngine(t)
		ids := setEngineChecks(t, sim,
			engineCheck(enginesim.TypeTCP, up.addr),
			engineCheck(enginesim.TypeTCP, refusedAddr(t)),
			silentCheck,
		)
		upID, downID, silentID := ids[0], ids[1], ids[2]
		mode.start(t, sock, stackOptions{NotifyInterval: notifyInterval})

		const rounds = 4
		snap := waitEngine(t, sim, "repeated statuses of the probed checks",
			func(s *enginesim.Snapshot) bool {
				return len(receivedOf(s.Received, upID)) >= rounds &&
					len(receivedOf(s.Received, downID)) >= rounds
			})
		want := map[uint64]messages.State{upID: healthy, downID: unhealthy}
		for id, state := range want {
			got := receivedOf(snap.Received, id)
			for _, r := range got {
				if s := messages.State(r.Notification.Status.State); s != state {
					t.Errorf("check %d: notified %v %q, want %v every time",
						id, s, r.Notification.Status.Message, state)
				}
			}
			// The first notification is the state change; the others are
			// periodic and come no more often than notify_interval, give
			// or take a loaded machine's timer.
			periodic := got[1:]
			span := periodic[len(periodic)-1].At.Sub(periodic[0].At)
			if gaps := len(periodic) - 1; span < time.Duration(gaps)*notifyInterval/2 {
				t.Errorf("check %d: %d periodic statuses within %v, want them %v apart",
					id, len(periodic), span, notifyInterval)
			}
		}
		if got := receivedOf(snap.Received, silentID); len(got) != 0 {
			t.Errorf("the Engine heard of the unprobed check: %+v", got[0].Notification)
		}
	})
}

// TestEngineUnsupportedCheckSkipped has the Engine serve a check that the
// server cannot run yet (a DNS question of a type without an answer
// form) beside one it can: the bridge names the skipped check in its log,
// and the other runs.
func TestEngineUnsupportedCheckSkipped(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode engineMode) {
		up := startTCP(t, false)
		dnsAddr := startDNS(t, nil)
		srv := engineCheck(enginesim.TypeDNS, dnsAddr)
		srv.Send, srv.Method, srv.Receive = "_sip._udp.example.test", "SRV",
			"0 5 5060 sip.example.test"

		sim, sock := startEngine(t)
		ids := setEngineChecks(t, sim, engineCheck(enginesim.TypeTCP, up.addr), srv)
		upID, srvID := ids[0], ids[1]
		var logs logBuffer
		stack := mode.start(t, sock, stackOptions{Log: &logs})

		waitEngine(t, sim, "the supported check's state",
			statesAre(map[uint64]messages.State{upID: healthy}))
		id := fmt.Sprint(srvID)
		eventually(t, waitTimeout, "the skipped check in the log", func() bool {
			return len(logs.lines("engine_check_skipped", id)) > 0
		})
		if got := logs.lines("engine_check_skipped", id)[0]; !strings.Contains(got, "SRV") {
			t.Errorf("log line %s, want it to name the type", got)
		}
		truth := stack.truth(t)
		if _, ok := truth[srvID]; ok || len(truth) != 1 {
			t.Errorf("server runs %v, want only %d", slices.Sorted(maps.Keys(truth)), upID)
		}
		if st, ok := sim.States()[srvID]; ok {
			t.Errorf("the Engine heard of the skipped check: %+v", st)
		}
	})
}

// An Engine that configures more checks than -max_checks allows gets the
// first ones run and the rest rejected by ID in the log, the Engine
// hearing nothing of them; the bound is 5 here, for 8 checks.
func TestEngineChecksOverTheBound(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode engineMode) {
		var checks []enginesim.Check
		for range 8 {
			up := startTCP(t, false)
			checks = append(checks, engineCheck(enginesim.TypeTCP, up.addr))
		}
		sim, sock := startEngine(t)
		ids := setEngineChecks(t, sim, checks...)
		var logs logBuffer
		stack := mode.start(t, sock, stackOptions{Log: &logs, MaxChecks: 5})

		slices.Sort(ids)
		want := make(map[uint64]messages.State)
		for _, id := range ids[:5] {
			want[id] = healthy
		}
		waitEngine(t, sim, "the first five checks healthy", statesAre(want))
		eventually(t, waitTimeout, "the rejected checks in the log", func() bool {
			return len(logs.lines("too_many_checks")) > 0
		})
		line := logs.lines("too_many_checks")[0]
		for _, id := range ids[5:] {
			if !strings.Contains(line, fmt.Sprint(id)) {
				t.Errorf("log line %s, want it to name check %d", line, id)
			}
		}
		if truth := stack.truth(t); len(truth) != 5 {
			t.Errorf("server runs %d checks, want 5", len(truth))
		}
		for _, id := range ids[5:] {
			if st, ok := sim.States()[id]; ok {
				t.Errorf("the Engine heard of rejected check %d: %+v", id, st)
			}
		}
	})
}
