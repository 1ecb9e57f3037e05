package enginesim

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lbhealth/hcsupervisor/bridge"
)

var (
	checkA = Check{Type: "tcp", IP: "127.0.0.1", Port: 80}
	checkB = Check{Type: "http", IP: "127.0.0.1", Port: 8080}
	checkC = Check{Type: "icmp", IP: "127.0.0.1"}
	checkD = Check{Type: "udp", IP: "127.0.0.2", Port: 53}
)

// TestSetChecksIDs checks the Engine's numbering over a sequence of
// SetChecks calls on one Server.
func TestSetChecksIDs(t *testing.T) {
	const base = testIDBase
	edited := checkB
	edited.Interval = time.Second
	steps := []struct {
		name   string
		checks []Check
		want   Update
		same   []uint64          // IDs that serve their previous config
		ping   map[uint64]uint16 // echo IDs of icmp checks
	}{{
		name:   "first set numbers from the base",
		checks: []Check{checkA, checkB, checkC},
		want:   Update{IDs: []uint64{base, base + 1, base + 2}, Added: 3},
		ping:   map[uint64]uint16{base + 2: testPingID},
	}, {
		name:   "unchanged checks keep their IDs in any order",
		checks: []Check{checkC, checkA, checkB},
		want:   Update{IDs: []uint64{base + 2, base, base + 1}, Unchanged: 3},
		same:   []uint64{base, base + 1, base + 2},
	}, {
		name:   "an edited check gets a new ID",
		checks: []Check{checkA, edited, checkC},
		want: Update{IDs: []uint64{base, base + 3, base + 2}, Unchanged: 2,
			Changed: 1},
		same: []uint64{base, base + 2},
		ping: map[uint64]uint16{base + 2: testPingID},
	}, {
		name:   "identical checks share an ID",
		checks: []Check{checkA, checkA, checkD},
		want: Update{IDs: []uint64{base, base, base + 4}, Unchanged: 1,
			Added: 1, Removed: 2},
		same: []uint64{base},
	}, {
		name:   "a check that comes back gets a new ID",
		checks: []Check{checkA, checkB},
		want: Update{IDs: []uint64{base, base + 5}, Unchanged: 1, Removed: 1,
			Added: 1},
		same: []uint64{base},
	}, {
		name:   "explicit IDs are kept, and automatic ones avoid them",
		checks: []Check{withID(checkD, base+6), checkA, checkB, checkC},
		want: Update{IDs: []uint64{base + 6, base, base + 5, base + 7},
			Unchanged: 2, Added: 2},
		same: []uint64{base, base + 5},
		ping: map[uint64]uint16{base + 7: testPingID + 1},
	}, {
		name:   "an explicit ID whose check changes keeps it",
		checks: []Check{withID(checkB, base+6), checkA},
		want: Update{IDs: []uint64{base + 6, base}, Unchanged: 1, Changed: 1,
			Removed: 2},
		same: []uint64{base},
	}}
	s := New(testConfig())
	var prev map[uint64]*bridge.Config
	for _, step := range steps {
		got, err := s.SetChecks(step.checks)
		if err != nil {
			t.Fatalf("%s: SetChecks: %v", step.name, err)
		}
		if diff := cmp.Diff(step.want, got); diff != "" {
			t.Errorf("%s: Update (-want +got):\n%s", step.name, diff)
		}
		configs := s.Configs()
		checkServed(t, step.name, configs, got.IDs)
		for _, id := range step.same {
			if configs[id] != prev[id] {
				t.Errorf("%s: %#x serves a new config, want its previous one",
					step.name, id)
			}
		}
		for id, want := range step.ping {
			if got := configs[id].Checker.(*bridge.PingChecker).ID; got != want {
				t.Errorf("%s: echo ID of %#x = %d, want %d", step.name, id, got, want)
			}
		}
		prev = configs
	}
}

// checkServed checks that configs holds exactly ids, each config under
// its own ID.
func checkServed(t *testing.T, step string, configs map[uint64]*bridge.Config,
	ids []uint64) {
	t.Helper()
	want := make(map[uint64]bool)
	for _, id := range ids {
		want[id] = true
		if c := configs[id]; c == nil || c.Id != id {
			t.Errorf("%s: config of %#x = %+v", step, id, c)
		}
	}
	if len(configs) != len(want) {
		t.Errorf("%s: serving %d configs, want %d", step, len(configs), len(want))
	}
}

func withID(c Check, id uint64) Check {
	c.ID = id
	return c
}

// TestSetChecksInvalid checks that an invalid check is reported with its
// index and field, and leaves the served set as it was.
func TestSetChecksInvalid(t *testing.T) {
	tcp := func(c Check) Check {
		c.Type, c.Port = "tcp", 80
		if c.IP == "" {
			c.IP = "127.0.0.1"
		}
		return c
	}
	dsr := func(c Check) Check {
		c.Mode, c.IP, c.Host = "dsr", "192.0.2.10", "10.0.0.1"
		return c
	}
	tests := []struct {
		name  string
		check Check
		want  string
	}{
		{"no type", Check{IP: "127.0.0.1"}, "check 0: type: missing"},
		{"unknown type", Check{Type: "ftp"}, `type: unknown type "ftp"`},
		{"no ip", Check{Type: "tcp", Port: 80}, "ip: missing"},
		{"bad ip", tcp(Check{IP: "localhost"}), `ip: "localhost" is not`},
		{"zone", tcp(Check{IP: "fe80::1%eth0"}), "ip: zones are not supported"},
		{"no port", Check{Type: "udp", IP: "127.0.0.1"}, "port: must be within"},
		{"big port", Check{Type: "udp", IP: "::1", Port: 1 << 16}, "port: must be"},
		{"icmp port", Check{Type: "icmp", IP: "::1", Port: 7}, "port: must be 0"},
		{"icmp dsr", Check{Type: "icmp", IP: "192.0.2.10", Host: "10.0.0.1",
			Mode: "dsr"}, "mode: icmp checks cannot use dsr mode"},
		{"bad mode", tcp(Check{Mode: "nat"}), `mode: want plain, dsr or tun`},
		{"dsr without host", tcp(Check{Mode: "dsr"}), "host: missing"},
		{"dsr families", tcp(Check{Mode: "tun", Host: "::1"}), "differ in family"},
		{"plain host", tcp(Check{Host: "127.0.0.2"}), "host: 127.0.0.2 differs"},
		{"plain mark", tcp(Check{Mark: MarkBase}), "mark: only dsr and tun"},
		{"negative mark", dsr(tcp(Check{Mark: -1})), "mark: must not be negative"},
		{"interval", tcp(Check{Interval: -1}), "interval: must not be negative"},
		{"timeout", tcp(Check{Timeout: -1}), "timeout: must not be negative"},
		{"retries", tcp(Check{Retries: -1}), "retries: must not be negative"},
		{"http code", Check{Type: "http", IP: "::1", Port: 80, Code: 42},
			"code: want 0 or 100-999, got 42"},
		{"dns method", Check{Type: "dns", IP: "::1", Port: 53}, "method: missing"},
		{"dns type", Check{Type: "dns", IP: "::1", Port: 53, Method: "BOGUS"},
			`method: unknown DNS type "BOGUS"`},
		{"radius send", Check{Type: "radius", IP: "::1", Port: 1812, Send: "u:p"},
			"send: want user:password:secret, got 2 parts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(testConfig())
			setChecks(t, s, checkA)
			before := s.Configs()

			_, err := s.SetChecks([]Check{tt.check})
			var ce *CheckError
			if !errors.Is(err, ErrInvalidCheck) || !errors.As(err, &ce) {
				t.Fatalf("SetChecks = %v, want a CheckError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SetChecks = %q, want it to contain %q", err, tt.want)
			}
			if diff := cmp.Diff(before, s.Configs()); diff != "" {
				t.Errorf("served set changed (-before +after):\n%s", diff)
			}
		})
	}
}

// TestSetChecksReportsEveryError checks that every invalid check is
// reported, including a repeated explicit ID.
func TestSetChecksReportsEveryError(t *testing.T) {
	s := New(testConfig())
	_, err := s.SetChecks([]Check{
		withID(checkA, 5), {Type: "tcp"}, withID(checkB, 5),
	})
	for _, want := range []string{
		"check 1: ip: missing", "check 2: id: 5 is also the id of check 0",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("SetChecks = %v, want it to contain %q", err, want)
		}
	}
}

// TestSetChecksMarks checks that DSR and TUN checks get the Engine's marks:
// one per backend and mode, from the pool, freed with their last check.
func TestSetChecksMarks(t *testing.T) {
	check := func(typ, backend, mode string, port, mark int) Check {
		return Check{Type: typ, IP: "192.0.2.10", Host: backend, Port: port,
			Mode: mode, Mark: mark}
	}
	steps := []struct {
		name   string
		checks []Check
		want   []int
	}{{
		name: "one mark per backend and mode",
		checks: []Check{
			check("http", "10.0.0.1", "dsr", 80, 0),
			check("tcp", "10.0.0.1", "dsr", 81, 0),
			check("tcp", "10.0.0.2", "dsr", 80, 0),
			check("tcp", "10.0.0.1", "tun", 80, 0),
			check("tcp", "10.0.0.9", "tun", 80, MarkBase+3),
			check("tcp", "10.0.0.3", "dsr", 80, 0),
			{Type: "tcp", IP: "10.0.0.1", Port: 80},
		},
		want: []int{MarkBase, MarkBase, MarkBase + 1, MarkBase + 2,
			MarkBase + 3, MarkBase + 4, 0},
	}, {
		name:   "a backend keeps its mark",
		checks: []Check{check("tcp", "10.0.0.2", "dsr", 80, 0)},
		want:   []int{MarkBase + 1},
	}, {
		name: "freed marks are reused",
		checks: []Check{
			check("tcp", "10.0.0.4", "dsr", 80, 0),
			check("tcp", "10.0.0.2", "dsr", 80, 0),
		},
		want: []int{MarkBase, MarkBase + 1},
	}}
	s := New(testConfig())
	for _, step := range steps {
		ids := setChecks(t, s, step.checks...)
		configs := s.Configs()
		for i, id := range ids {
			got := targetOfConfig(configs[id]).Mark
			if got != step.want[i] {
				t.Errorf("%s: check %d: mark %d, want %d", step.name, i, got,
					step.want[i])
			}
		}
	}
}

// TestSetChecksMarkPool checks that an update needing more marks than the
// pool holds fails as a whole.
func TestSetChecksMarkPool(t *testing.T) {
	checks := make([]Check, MarkPoolSize+1)
	for i := range checks {
		checks[i] = Check{Type: "tcp", IP: "2001:db8::1", Port: 80,
			Host: fmt.Sprintf("2001:db8:1::%x", i), Mode: "dsr"}
	}
	s := New(testConfig())
	if _, err := s.SetChecks(checks[:MarkPoolSize]); err != nil {
		t.Fatalf("SetChecks of a full pool: %v", err)
	}
	_, err := s.SetChecks(checks)
	if !errors.Is(err, ErrMarksExhausted) {
		t.Errorf("SetChecks past the pool = %v, want ErrMarksExhausted", err)
	}
	if got := len(s.Configs()); got != MarkPoolSize {
		t.Errorf("serving %d configs, want the previous %d", got, MarkPoolSize)
	}
}

// targetOfConfig returns the target of c's checker.
func targetOfConfig(c *bridge.Config) bridge.Target {
	switch ch := c.Checker.(type) {
	case *bridge.TCPChecker:
		return ch.Target
	case *bridge.HTTPChecker:
		return ch.Target
	}
	panic(fmt.Sprintf("unexpected checker %T", c.Checker))
}
