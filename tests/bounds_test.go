package tests

import (
	"bufio"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/messages"
)

// errorsOf returns the messages of the error replies c received.
func errorsOf(c *client) []string {
	var out []string
	for _, r := range c.got {
		if e, ok := r.msg.(*messages.Error); ok {
			out = append(out, e.Message)
		}
	}
	return out
}

func hasError(c *client, part string) bool {
	for _, m := range errorsOf(c) {
		if strings.Contains(m, part) {
			return true
		}
	}
	return false
}

func TestTooManyClients(t *testing.T) {
	srv := startServer(t, serverOptions{TuneProxy: func(p *actors.ProxyConfig) {
		p.MaxClients = 2
	}})
	first := dial(t, srv.path)
	dial(t, srv.path)

	conn, err := net.DialTimeout("unix", srv.path, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(waitTimeout))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(line, "too many clients (limit 2") {
		t.Fatalf("third client read %q, %v; want the too-many-clients error", line, err)
	}
	if got := srv.stats.Refused.Load(); got != 1 {
		t.Errorf("refused = %d, want 1", got)
	}

	// The server keeps serving, and a place that frees up can be taken.
	first.send(&messages.RequestStatus{})
	reply[*messages.StatusResponse](first, 1, "status")
	first.close()
	eventually(t, waitTimeout, "the first client's place to free up", func() bool {
		return srv.stats.Clients.Load() == 1
	})
	dial(t, srv.path)
}

func TestConfigsPerMessageBound(t *testing.T) {
	srv := startServer(t, serverOptions{TuneProxy: func(p *actors.ProxyConfig) {
		p.MaxConfigs = 3
	}})
	backend := startTCP(t, false)
	c := dial(t, srv.path)
	var four []messages.Config
	for id := range uint64(4) {
		four = append(four, tcpConfig(id+1, backend.addr))
	}
	c.update(four...)
	c.waitFor(waitTimeout, "the limit's error", func() bool {
		return hasError(c, "over the limit of 3 (-max_configs_per_message)")
	})
	if st := c.status(); len(st.Statuses) != 0 {
		t.Errorf("%d checks applied from a rejected update, want 0", len(st.Statuses))
	}
	c.update(four[:3]...)
	c.waitStatus(waitTimeout, "the checks to run", func(st *messages.StatusResponse) bool {
		return len(st.Statuses) == 3
	})
}

// idErrors returns the IDs of the error replies c received, from the
// from-th line on, whose message contains part.
func idErrors(c *client, from int, part string) []uint64 {
	var out []uint64
	for _, r := range c.got[from:] {
		if e, ok := r.msg.(*messages.Error); ok && e.ID != nil &&
			strings.Contains(e.Message, part) {
			out = append(out, *e.ID)
		}
	}
	return out
}

func TestMaxChecksBound(t *testing.T) {
	srv := startServer(t, serverOptions{Tune: func(m *actors.ManagerConfig) {
		m.MaxChecks = 3
	}})
	backend := startTCP(t, false)
	c := dial(t, srv.path)
	var five []messages.Config
	for id := range uint64(5) {
		five = append(five, tcpConfig(id+1, backend.addr))
	}
	const bound = "too many checks: over the limit of 3 (-max_checks)"

	// Each config over the bound gets an error naming it.
	c.update(five...)
	c.waitFor(waitTimeout, "an error for each config over the bound", func() bool {
		return len(idErrors(c, 0, bound)) >= 2
	})
	if got := idErrors(c, 0, bound); !slices.Equal(got, []uint64{4, 5}) {
		t.Errorf("configs refused = %v, want [4 5]", got)
	}
	st := c.waitStatus(waitTimeout, "three checks", func(st *messages.StatusResponse) bool {
		return len(st.Statuses) == 3
	})
	if got := ids(st); got[0] != 1 || got[2] != 3 {
		t.Errorf("checks run = %v, want the first three", got)
	}

	// The running checks keep their places when a later update is cut.
	from := len(c.got)
	c.update(append([]messages.Config{five[4]}, five[:3]...)...)
	c.waitFor(waitTimeout, "the error for config 5", func() bool {
		return len(idErrors(c, from, bound)) >= 1
	})
	if got := idErrors(c, from, bound); !slices.Equal(got, []uint64{5}) {
		t.Errorf("configs refused = %v, want [5]", got)
	}
	c.waitStatus(waitTimeout, "the checks to run", func(st *messages.StatusResponse) bool {
		got := ids(st)
		return len(got) == 3 && got[0] == 1 && got[2] == 3
	})
}

func TestSlowClientKeepsNewestStatePerCheck(t *testing.T) {
	srv := startServer(t, serverOptions{
		NotifyInterval: 5 * time.Millisecond,
		TuneProxy:      func(p *actors.ProxyConfig) { p.ClientQueue = 2 },
	})
	f := startFleet(t, 100, 50*time.Millisecond)
	fast := dial(t, srv.path)
	fast.update(f.configs...)

	// A client that reads nothing: its socket buffer fills, then its
	// queue, then its backlog takes over.
	slow := dial(t, srv.path)
	eventually(t, waitTimeout, "the slow client's backlog to supersede", func() bool {
		fast.readOne(time.Now().Add(pollEvery))
		return srv.stats.Superseded.Load() > 0
	})

	// The fast client is not held up by the slow one.
	for _, b := range f.backends {
		b.setCode(http.StatusInternalServerError)
	}
	truth := f.truth()
	fast.waitFor(waitTimeout, "the fast client to see every check fail", func() bool {
		return sameStates(lastNotified(fast), truth)
	})

	// Once it reads, the slow client ends with the newest state of each.
	slow.waitFor(3*waitTimeout, "the slow client to catch up", func() bool {
		return sameStates(lastNotified(slow), truth)
	})
}
