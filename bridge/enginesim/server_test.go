package enginesim

import (
	"context"
	"errors"
	"net"
	"net/rpc"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/messages"
)

// TestAccess checks the Engine's refusals, made with a raw RPC client
// because the bridge's client always sends a trusted context.
func TestAccess(t *testing.T) {
	untrusted := &bridge.Context{AuthType: 0}
	note := []*bridge.Notification{{Id: testIDBase}}
	tests := []struct {
		name   string
		method string
		args   any
		reply  any
		want   string
	}{{
		name:   "healthchecks untrusted",
		method: "SeesawEngine.Healthchecks",
		args:   untrusted,
		reply:  &bridge.Checks{},
		want:   "insufficient access",
	}, {
		name:   "healthstate untrusted",
		method: "SeesawEngine.HealthState",
		args:   &bridge.HealthState{Ctx: &bridge.Context{AuthType: 3}, Notifications: note},
		reply:  new(int),
		want:   "insufficient access",
	}, {
		name:   "healthstate without context",
		method: "SeesawEngine.HealthState",
		args:   &bridge.HealthState{Notifications: note},
		reply:  new(int),
		want:   "context is nil",
	}, {
		name:   "unknown method",
		method: "SeesawEngine.Failover",
		args:   untrusted,
		reply:  new(int),
		want:   "rpc: can't find method SeesawEngine.Failover",
	}}
	s, path := startServer(t, testConfig())
	setChecks(t, s, checkA)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := rpc.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Call(tt.method, tt.args, tt.reply)
			if want := rpc.ServerError(tt.want); err != want {
				t.Errorf("Call = %#v, want %#v", err, want)
			}
		})
	}
	if got := s.Counts(); got.Notifications != 0 || got.Errors != 3 {
		t.Errorf("counts %+v, want no notifications and 3 errors", got)
	}
}

// TestHealthState checks that notifications are recorded, that unknown
// IDs are counted and otherwise ignored, and that OnNotify sees them all.
func TestHealthState(t *testing.T) {
	var mu sync.Mutex
	var notified []uint64
	cfg := testConfig()
	cfg.OnNotify = func(n bridge.Notification) {
		mu.Lock()
		defer mu.Unlock()
		notified = append(notified, n.Id)
	}
	s, path := startServer(t, cfg)
	id := setChecks(t, s, checkA)[0]
	const unknown = 99
	client := bridge.NewEngineClient(path, waitBound)

	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	batches := [][]messages.CheckStatus{
		{status(id, messages.StateUnhealthy, at, "refused"), status(unknown,
			messages.StateHealthy, at, "old")},
		{status(id, messages.StateHealthy, at.Add(time.Second), "ok")},
	}
	for _, b := range batches {
		if err := client.HealthState(context.Background(), b); err != nil {
			t.Fatalf("HealthState: %v", err)
		}
	}

	want := bridge.FromStatus(batches[1][0]).Status
	if diff := cmp.Diff(map[uint64]bridge.Status{id: want}, s.States()); diff != "" {
		t.Errorf("States (-want +got):\n%s", diff)
	}
	wantCounts := Counts{Connections: 2, HealthState: 2, Notifications: 3,
		UnknownIDs: 1, Updates: 1}
	if got := s.Counts(); got != wantCounts {
		t.Errorf("Counts = %+v, want %+v", got, wantCounts)
	}
	checkReceived(t, s.Received(), []Received{
		{Call: 1, Known: true, Notification: *bridge.FromStatus(batches[0][0])},
		{Call: 1, Notification: *bridge.FromStatus(batches[0][1])},
		{Call: 2, Known: true, Notification: *bridge.FromStatus(batches[1][0])},
	})
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]uint64{id, unknown, id}, notified); diff != "" {
		t.Errorf("OnNotify saw (-want +got):\n%s", diff)
	}
}

// TestHealthStateForgetsRemovedChecks checks that removing a check drops
// its state, and that its ID is then unknown.
func TestHealthStateForgetsRemovedChecks(t *testing.T) {
	s, path := startServer(t, testConfig())
	id := setChecks(t, s, checkA)[0]
	client := bridge.NewEngineClient(path, waitBound)
	send := func() {
		t.Helper()
		err := client.HealthState(context.Background(), []messages.CheckStatus{
			status(id, messages.StateHealthy, time.Now(), "ok")})
		if err != nil {
			t.Fatalf("HealthState: %v", err)
		}
	}
	send()
	setChecks(t, s, checkB)
	if got := s.States(); len(got) != 0 {
		t.Errorf("States after removal = %v, want none", got)
	}
	send()
	if got := s.Counts().UnknownIDs; got != 1 {
		t.Errorf("UnknownIDs = %d, want 1", got)
	}
}

// TestHistory checks that Received keeps only the latest notifications.
func TestHistory(t *testing.T) {
	tests := []struct {
		name    string
		history int
		want    []uint64
	}{
		{"bounded", 3, []uint64{3, 4, 5}},
		{"larger than needed", 10, []uint64{1, 2, 3, 4, 5}},
		{"none", -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.History = tt.history
			s, path := startServer(t, cfg)
			var batch []messages.CheckStatus
			for id := uint64(1); id <= 5; id++ {
				batch = append(batch, status(id, messages.StateHealthy,
					time.Now(), ""))
				if id == 2 || id == 5 {
					err := bridge.NewEngineClient(path, waitBound).
						HealthState(context.Background(), batch)
					if err != nil {
						t.Fatal(err)
					}
					batch = nil
				}
			}
			var got []uint64
			for _, r := range s.Received() {
				got = append(got, r.Notification.Id)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Received IDs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFaults checks that injected errors reach the bridge's client as
// the sentinels its texts map to, and that clearing them restores the
// normal replies.
func TestFaults(t *testing.T) {
	fetchErr := func(c *bridge.EngineClient) error {
		_, err := c.Healthchecks(context.Background())
		return err
	}
	notifyErr := func(c *bridge.EngineClient) error {
		return c.HealthState(context.Background(), []messages.CheckStatus{
			status(1, messages.StateHealthy, time.Now(), "")})
	}
	tests := []struct {
		name   string
		inject func(*Server, string)
		call   func(*bridge.EngineClient) error
		text   string
		want   error
	}{
		{"healthchecks", (*Server).SetHealthchecksError, fetchErr, "boom",
			bridge.ErrEngine},
		{"healthchecks access", (*Server).SetHealthchecksError, fetchErr,
			"insufficient access", bridge.ErrAccess},
		{"healthstate", (*Server).SetHealthStateError, notifyErr,
			"vserver queue full", bridge.ErrEngine},
		{"healthstate args", (*Server).SetHealthStateError, notifyErr,
			"args is nil", bridge.ErrArgs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path := startServer(t, testConfig())
			client := bridge.NewEngineClient(path, waitBound)

			tt.inject(s, tt.text)
			err := tt.call(client)
			var ee *bridge.EngineError
			if !errors.Is(err, tt.want) || !errors.As(err, &ee) || ee.Text != tt.text {
				t.Errorf("with %q injected: err = %v, want %v with that text",
					tt.text, err, tt.want)
			}

			tt.inject(s, "")
			if err := tt.call(client); err != nil {
				t.Errorf("after clearing: err = %v", err)
			}
			got := s.Counts()
			if got.Errors != 1 || got.Notifications > 1 {
				t.Errorf("Counts = %+v, want 1 error and the later call only", got)
			}
		})
	}
}

// TestHangUntilClientGivesUp checks that a hanging call ends when its
// client times out and closes the connection, leaving nothing behind.
func TestHangUntilClientGivesUp(t *testing.T) {
	s, path := startServer(t, testConfig())
	s.SetHang(true)

	const timeout = 200 * time.Millisecond
	_, err := bridge.NewEngineClient(path, timeout).Healthchecks(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Healthchecks = %v, want a deadline error", err)
	}
	waitFor(t, s, "the hung call to end", func(sn *Snapshot) bool {
		return sn.Counts.Hung == 1 && sn.Counts.Errors == 1 && sn.Open == 0
	})
}

// TestHangReleased checks that SetHang(false) lets hung calls complete.
func TestHangReleased(t *testing.T) {
	s, path := startServer(t, testConfig())
	setChecks(t, s, checkA)
	s.SetHang(true)

	done := make(chan error, 1)
	go func() {
		_, err := bridge.NewEngineClient(path, waitBound).
			Healthchecks(context.Background())
		done <- err
	}()
	waitFor(t, s, "a hung call", func(sn *Snapshot) bool {
		return sn.Counts.Hung == 1
	})
	s.SetHang(false)
	if err := <-done; err != nil {
		t.Errorf("released Healthchecks = %v, want success", err)
	}
}

// TestHangEndsOnClose checks that Close ends hung calls and returns.
func TestHangEndsOnClose(t *testing.T) {
	path := socketPath(t)
	s := New(testConfig())
	if err := s.Listen(path); err != nil {
		t.Fatal(err)
	}
	s.SetHang(true)

	done := make(chan error, 1)
	go func() {
		done <- bridge.NewEngineClient(path, waitBound).HealthState(
			context.Background(), []messages.CheckStatus{{ID: 1}})
	}()
	waitFor(t, s, "a hung call", func(sn *Snapshot) bool {
		return sn.Counts.Hung == 1
	})
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := <-done; err == nil {
		t.Error("HealthState on a closed server succeeded")
	}
}

// TestRestart checks that a Server can Close and Listen again on the same
// path, as an Engine restart does, and that clients meanwhile fail to
// dial.
func TestRestart(t *testing.T) {
	path := socketPath(t)
	s := New(testConfig())
	setChecks(t, s, checkA)
	client := bridge.NewEngineClient(path, waitBound)
	for round := range 3 {
		if err := s.Listen(path); err != nil {
			t.Fatalf("round %d: Listen: %v", round, err)
		}
		if got := len(fetch(t, path).Configs); got != 1 {
			t.Errorf("round %d: fetched %d configs, want 1", round, got)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", round, err)
		}
		if _, err := client.Healthchecks(context.Background()); !errors.Is(err,
			bridge.ErrDial) {
			t.Errorf("round %d: Healthchecks after Close = %v, want ErrDial",
				round, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestListenErrors checks what Listen refuses and what it replaces.
func TestListenErrors(t *testing.T) {
	t.Run("twice", func(t *testing.T) {
		s, path := startServer(t, testConfig())
		if err := s.Listen(path); !errors.Is(err, ErrListening) {
			t.Errorf("second Listen = %v, want ErrListening", err)
		}
	})
	t.Run("regular file", func(t *testing.T) {
		path := socketPath(t)
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := New(testConfig()).Listen(path); !errors.Is(err, ErrNotSocket) {
			t.Errorf("Listen = %v, want ErrNotSocket", err)
		}
	})
	t.Run("live socket", func(t *testing.T) {
		_, path := startServer(t, testConfig())
		if err := New(testConfig()).Listen(path); !errors.Is(err, ErrInUse) {
			t.Errorf("Listen = %v, want ErrInUse", err)
		}
	})
	t.Run("stale socket", func(t *testing.T) {
		path := socketPath(t)
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close()
		s := New(testConfig())
		if err := s.Listen(path); err != nil {
			t.Fatalf("Listen over a stale socket: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// TestCloseIdleConnection checks that Close closes a connection that
// never sends a request.
func TestCloseIdleConnection(t *testing.T) {
	path := socketPath(t)
	s := New(testConfig())
	if err := s.Listen(path); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitFor(t, s, "the connection", func(sn *Snapshot) bool { return sn.Open == 1 })

	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(waitBound)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("read from a connection Close closed succeeded")
	}
}

// TestWaitForContext checks that WaitFor gives up when its context ends.
func TestWaitForContext(t *testing.T) {
	s := New(testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.WaitFor(ctx, func(*Snapshot) bool { return false })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor = %v, want context.Canceled", err)
	}
}

// status returns a CheckStatus of id.
func status(id uint64, st messages.State, at time.Time,
	msg string) messages.CheckStatus {
	return messages.CheckStatus{ID: id, Status: messages.Status{
		State: st, Message: msg, LastCheck: at, Duration: time.Millisecond,
		Successes: 1,
	}}
}

// checkReceived compares got with want, ignoring arrival times, which
// must be set.
func checkReceived(t *testing.T, got, want []Received) {
	t.Helper()
	for i := range got {
		if got[i].At.IsZero() {
			t.Errorf("Received[%d].At is zero", i)
		}
		got[i].At = time.Time{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Received (-want +got):\n%s", diff)
	}
}
