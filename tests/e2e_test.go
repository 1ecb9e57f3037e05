package tests

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

const (
	unknown   = messages.StateUnknown
	unhealthy = messages.StateUnhealthy
	healthy   = messages.StateHealthy
)

// TestFirstNotifications configures every checker type against healthy
// and failing backends in one update, and checks each check's first
// notification.
func TestFirstNotifications(t *testing.T) {
	srv := startServer(t, serverOptions{})
	tcpUp := startTCP(t, false)
	refused := refusedAddr(t)
	httpUp := startHTTP(t, 200)
	httpDown := startHTTP(t, 503)
	answer := netip.MustParseAddr("127.0.0.10")
	dnsAddr := startDNS(t, map[string]netip.Addr{"www.example.test.": answer})

	tests := []struct {
		name    string
		cfg     messages.Config
		want    messages.State
		wantMsg []string
	}{
		{
			name:    "tcp connect",
			cfg:     tcpConfig(1, tcpUp.addr),
			want:    healthy,
			wantMsg: []string{"TCP connect to " + targetString(tcpUp.addr)},
		},
		{
			name: "tcp refused",
			cfg:  tcpConfig(2, refused),
			want: unhealthy,
			wantMsg: []string{
				"TCP connect to " + targetString(refused),
				"connect failed", "refused",
			},
		},
		{
			name: "http 200 with body prefix",
			cfg:  httpConfig(3, httpUp.addr, "OK backend"),
			want: healthy,
			wantMsg: []string{
				"HTTP GET to " + targetString(httpUp.addr), "got 200 OK",
			},
		},
		{
			name:    "http 200 with wrong body",
			cfg:     httpConfig(4, httpUp.addr, "NOT OK"),
			want:    unhealthy,
			wantMsg: []string{"got 200 OK", "unexpected response"},
		},
		{
			name:    "http 503",
			cfg:     httpConfig(5, httpDown.addr, ""),
			want:    unhealthy,
			wantMsg: []string{"got 503 Service Unavailable", "want 200"},
		},
		{
			name: "dns expected answer",
			cfg:  dnsConfig(6, dnsAddr, "www.example.test", answer),
			want: healthy,
			wantMsg: []string{
				"DNS www.example.test. IN A query to " + targetString(dnsAddr),
				"received answer 127.0.0.10",
			},
		},
		{
			name: "dns unexpected answer",
			cfg: dnsConfig(7, dnsAddr, "www.example.test",
				netip.MustParseAddr("127.0.0.11")),
			want:    unhealthy,
			wantMsg: []string{"answer 127.0.0.10 not expected"},
		},
		{
			name:    "dns nxdomain",
			cfg:     dnsConfig(8, dnsAddr, "nope.example.test"),
			want:    unhealthy,
			wantMsg: []string{"NXDOMAIN"},
		},
	}

	c := dial(t, srv.path)
	var configs []messages.Config
	var all []uint64
	for _, tt := range tests {
		configs = append(configs, tt.cfg)
		all = append(all, tt.cfg.ID)
	}
	start := time.Now()
	c.update(configs...)
	first := c.waitFirstNotes(0, all...)
	end := time.Now()

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := first[tt.cfg.ID]
			st := n.Status
			// The first notification is the first probe's result.
			checkFirstStatus(t, st, outcome{tt.want, tt.wantMsg})
			if st.Restarts != 0 {
				t.Errorf("restarts = %d, want 0", st.Restarts)
			}
			if st.LastCheck.Before(start) || st.LastCheck.After(end) {
				t.Errorf("last_check = %v, want within [%v, %v]",
					st.LastCheck, start, end)
			}
			if st.Duration < 0 || st.LastCheck.Add(st.Duration).After(end) {
				t.Errorf("duration = %v from %v, want it to end by %v",
					st.Duration, st.LastCheck, end)
			}
			checkRawLastCheck(t, c.got[n.index].raw, tt.cfg.ID)
		})
	}
}

// checkRawLastCheck checks that the notification of id in the raw batch
// line carries last_check as an RFC 3339 timestamp.
func checkRawLastCheck(t *testing.T, raw string, id uint64) {
	t.Helper()
	var batch struct {
		Notifications []struct {
			ID     uint64 `json:"id"`
			Status struct {
				State     string `json:"state"`
				LastCheck string `json:"last_check"`
			} `json:"status"`
		} `json:"notifications"`
	}
	if err := json.Unmarshal([]byte(raw), &batch); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	for _, n := range batch.Notifications {
		if n.ID != id {
			continue
		}
		if _, err := time.Parse(time.RFC3339Nano, n.Status.LastCheck); err != nil {
			t.Errorf("last_check %q does not parse: %v", n.Status.LastCheck, err)
		}
		if _, err := messages.ParseState(n.Status.State); err != nil {
			t.Errorf("state %q: %v", n.Status.State, err)
		}
		return
	}
	t.Errorf("batch %s has no notification of %d", raw, id)
}

// TestStateTransitions flips an HTTP backend 200 -> 500 -> 200 and checks
// the notifications, and that retries=2 keeps the check healthy through
// two consecutive failures and makes it unhealthy on the third. The
// backend holds each 500 until the test releases it, so the test sees the
// check between any two failures.
func TestStateTransitions(t *testing.T) {
	srv := startServer(t, serverOptions{})
	b := startHTTP(t, 200)
	cfg := httpConfig(1, b.addr, "")
	cfg.Retries = 2
	// Long enough that a held answer never times out.
	cfg.Timeout = 2 * waitTimeout

	c := dial(t, srv.path)
	c.update(cfg)
	up := c.waitNote(0, 1, healthy)

	b.gated.Store(true)
	b.setCode(500)
	for failures := uint64(1); failures <= uint64(cfg.Retries); failures++ {
		b.release(t)
		st := c.waitStatus(waitTimeout, "a failure", func(st *messages.StatusResponse) bool {
			s, _ := statusOf(st, 1)
			return s.Failures >= failures
		})
		s, _ := statusOf(st, 1)
		if s.Failures != failures || s.State != healthy {
			t.Errorf("after %d of %d tolerated failures: "+
				"state %v with %d failures, want healthy",
				failures, cfg.Retries, s.State, s.Failures)
		}
		if n, ok := c.findNote(up.index+1, 1); ok {
			t.Errorf("after %d tolerated failures: notification %v %q, want none",
				failures, n.Status.State, n.Status.Message)
		}
	}

	b.release(t)
	down := c.waitNote(up.index+1, 1, unhealthy)
	if got, want := down.Status.Failures, uint64(cfg.Retries+1); got != want {
		t.Errorf("unhealthy notification: failures = %d, want %d", got, want)
	}
	if !strings.Contains(down.Status.Message, "got 500") {
		t.Errorf("unhealthy notification: message %q, want it to name the 500",
			down.Status.Message)
	}
	log := b.log()
	first500 := slices.Index(log, 500)
	if got := down.Status.Successes; first500 < 0 || got != uint64(first500) {
		t.Errorf("unhealthy notification: successes = %d, "+
			"want the 200s the backend answered first (log %v)", got, log)
	}

	b.setCode(200)
	b.openGate()
	back := c.waitNote(down.index+1, 1, healthy)
	if back.Status.Successes <= down.Status.Successes {
		t.Errorf("healthy again: successes = %d, want more than %d",
			back.Status.Successes, down.Status.Successes)
	}
	if back.Status.Failures < down.Status.Failures {
		t.Errorf("healthy again: failures = %d, want at least %d",
			back.Status.Failures, down.Status.Failures)
	}

	var states []messages.State
	for _, n := range c.notes(0) {
		states = append(states, n.Status.State)
	}
	want := []messages.State{healthy, unhealthy, healthy}
	if !slices.Equal(states, want) {
		t.Errorf("notified states = %v, want %v", states, want)
	}
}

// TestUpdateInPlaceAndRemoval changes only interval, timeout and retries
// of running checks, then removes one and adds it again.
func TestUpdateInPlaceAndRemoval(t *testing.T) {
	srv := startServer(t, serverOptions{})
	tcp1 := startTCP(t, false)
	web := startHTTP(t, 200)
	tcp3 := startTCP(t, false)
	set := []messages.Config{
		tcpConfig(1, tcp1.addr),
		httpConfig(2, web.addr, ""),
		tcpConfig(3, tcp3.addr),
	}

	c := dial(t, srv.path)
	c.update(set...)
	for id, n := range c.waitFirstNotes(0, 1, 2, 3) {
		if n.Status.State != healthy {
			t.Fatalf("check %d: state = %v, want healthy", id, n.Status.State)
		}
	}
	before := c.status()

	// The same probes with other timing: the checks keep their state and
	// their counters.
	changed := slices.Clone(set)
	for i := range changed {
		changed[i].Interval = 150 * time.Millisecond
		changed[i].Timeout = 400 * time.Millisecond
		changed[i].Retries = 1
	}
	mark := len(c.got)
	c.update(changed...)
	growing := func(st *messages.StatusResponse) bool {
		for _, cfg := range set {
			old, _ := statusOf(before, cfg.ID)
			now, ok := statusOf(st, cfg.ID)
			if !ok || now.State != healthy || now.Successes < old.Successes+3 {
				return false
			}
		}
		return true
	}
	c.waitStatus(waitTimeout, "successes to keep growing", growing)
	// The periodic full status is off, so a notification here could only
	// come from a state change, such as a reset to unknown.
	for _, n := range c.notes(mark) {
		t.Errorf("notification after an in-place update: %d %v %q",
			n.ID, n.Status.State, n.Status.Message)
	}

	// Removal: the check stops probing and leaves the status.
	c.update(changed[0], changed[2])
	if got, want := ids(c.status()), []uint64{1, 3}; !slices.Equal(got, want) {
		t.Errorf("after removing 2: status lists %v, want %v", got, want)
	}
	waitQuiet(t, "backend of the removed check to see no more probes",
		web.requests, 3*changed[1].Interval)
	stillProbed := tcp1.accepted.Load()
	eventually(t, waitTimeout, "the remaining checks to keep probing", func() bool {
		return tcp1.accepted.Load() > stillProbed
	})

	// Re-adding it starts a new check.
	mark = len(c.got)
	requests := web.requests()
	c.update(changed...)
	n := c.waitNote(mark, 2, healthy)
	if n.Status.Successes != 1 || n.Status.Failures != 0 {
		t.Errorf("re-added check: successes, failures = %d, %d; want 1, 0 (a new check)",
			n.Status.Successes, n.Status.Failures)
	}
	if web.requests() <= requests {
		t.Errorf("re-added check: backend saw no new probe")
	}
	if got, want := ids(c.status()), []uint64{1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("after re-adding 2: status lists %v, want %v", got, want)
	}
}

// waitQuiet waits until count stays the same for quiet, and fails the
// test if it does not within waitTimeout.
func waitQuiet(t *testing.T, what string, count func() int, quiet time.Duration) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	last, since := count(), time.Now()
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still changing after %v (count %d)",
				what, waitTimeout, last)
		}
		time.Sleep(pollEvery)
		if n := count(); n != last {
			last, since = n, time.Now()
		}
	}
}

// TestRequestStatus checks that a status response lists every configured
// check, ordered by ID, with its state.
func TestRequestStatus(t *testing.T) {
	srv := startServer(t, serverOptions{})
	c := dial(t, srv.path)

	// No checks: an empty list, not null.
	from := len(c.got)
	if st := c.status(); len(st.Statuses) != 0 {
		t.Errorf("without checks: status lists %v, want none", ids(st))
	}
	if raw := c.got[len(c.got)-1].raw; !strings.Contains(raw, `"statuses":[]`) {
		t.Errorf("without checks: status line = %s, want an empty list", raw)
	}
	if len(c.got) != from+1 {
		t.Errorf("without checks: got %d lines, want 1:\n%s", len(c.got)-from, c.dump(from))
	}

	up := startTCP(t, false)
	silent := startTCP(t, true)
	web := startHTTP(t, 200)
	want := map[uint64]messages.State{
		3:    unknown,
		7:    unhealthy,
		42:   healthy,
		1000: healthy,
	}
	c.update(
		tcpConfig(42, up.addr),
		tcpConfig(7, refusedAddr(t)),
		httpConfig(1000, web.addr, ""),
		silentConfig(3, silent.addr),
	)
	wantIDs := []uint64{3, 7, 42, 1000}

	// Right after the update every check is listed, probed or not.
	if got := ids(c.status()); !slices.Equal(got, wantIDs) {
		t.Errorf("right after the update: status lists %v, want %v", got, wantIDs)
	}

	st := c.waitStatus(waitTimeout, "every probed check to have a state",
		func(st *messages.StatusResponse) bool {
			for _, cs := range st.Statuses {
				if cs.Status.State != want[cs.ID] {
					return false
				}
			}
			return len(st.Statuses) == len(want)
		})
	if got := ids(st); !slices.Equal(got, wantIDs) {
		t.Errorf("status lists %v, want %v", got, wantIDs)
	}
	s3, _ := statusOf(st, 3)
	if !s3.LastCheck.IsZero() || s3.Successes != 0 || s3.Failures != 0 {
		t.Errorf("unprobed check: status = %+v, want no last_check and no counts", s3)
	}
	for _, id := range []uint64{7, 42, 1000} {
		s, _ := statusOf(st, id)
		if s.LastCheck.IsZero() || s.Successes+s.Failures == 0 || s.Message == "" {
			t.Errorf("check %d: status = %+v, want a last check, counts and a message", id, s)
		}
	}
}

// TestPeriodicFullStatus checks that every check with a result is re-sent
// every NotifyInterval although nothing changes, and that a check whose
// first probe has not completed is never reported as unknown.
func TestPeriodicFullStatus(t *testing.T) {
	srv := startServer(t, serverOptions{NotifyInterval: 300 * time.Millisecond})
	up := startTCP(t, false)
	silent := startTCP(t, true)

	c := dial(t, srv.path)
	c.update(
		tcpConfig(1, up.addr),
		tcpConfig(2, refusedAddr(t)),
		silentConfig(3, silent.addr),
	)
	c.waitFirstNotes(0, 1, 2)

	// Count full batches after the first results: each must list both
	// checks with a result.
	mark := len(c.got)
	const rounds = 3
	c.waitFor(waitTimeout, "periodic full statuses", func() bool {
		full := 0
		for _, b := range c.batches(mark) {
			var got []uint64
			for _, n := range b.Notifications {
				got = append(got, n.ID)
			}
			if slices.Contains(got, 1) && slices.Contains(got, 2) {
				full++
			}
		}
		return full >= rounds
	})

	want := map[uint64]messages.State{1: healthy, 2: unhealthy}
	for _, n := range c.notes(0) {
		if n.ID == 3 {
			t.Errorf("notification of the unprobed check: %v %q, want none",
				n.Status.State, n.Status.Message)
			continue
		}
		if n.Status.State != want[n.ID] {
			t.Errorf("notification of %d: state %v, want %v",
				n.ID, n.Status.State, want[n.ID])
		}
	}
	s3, ok := statusOf(c.status(), 3)
	if !ok || s3.State != unknown {
		t.Errorf("unprobed check: status %+v (listed %v), want unknown", s3, ok)
	}
}
