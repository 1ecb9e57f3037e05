package bridge

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// envFutureEngine names the socket a child test process serves a fake
// Engine on, as runFutureEngine describes.
const envFutureEngine = "BRIDGE_TEST_FUTURE_ENGINE"

// futureCheckerName is the gob name of a checker type a newer Engine
// might have and this package does not know.
const futureCheckerName = "*healthcheck.FutureChecker"

// futureChecker is that type, in the child process only.
type futureChecker struct {
	Target Target
	Depth  int
}

func (c *futureChecker) target() *Target { return &c.Target }

// runFutureEngine serves, on the socket path given, an Engine whose
// Healthchecks reply holds a TCP check (ID 1) and a check of
// futureChecker (ID 2), until its stdin ends. It runs in a child process,
// because gob's names are global to a process: registered here, the name
// would not be unknown to the client under test.
func runFutureEngine(path string) error {
	gob.RegisterName(futureCheckerName, &futureChecker{})
	tcp := config(&TCPChecker{Target: tcpTarget(80)})
	tcp.Id = 1
	future := config(&futureChecker{Target: tcpTarget(81), Depth: 3})
	future.Id = 2
	engine := &fakeEngine{checks: map[uint64]*Config{1: tcp, 2: future}}

	srv := rpc.NewServer()
	if err := srv.RegisterName("SeesawEngine", engine); err != nil {
		return err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	go srv.Accept(l)
	_, err = io.Copy(io.Discard, os.Stdin)
	l.Close()
	return err
}

// startFutureEngine runs runFutureEngine in a child process and returns
// its socket's path once it listens. The child ends at cleanup.
func startFutureEngine(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "engine.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envFutureEngine+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("future engine: %v", err)
		}
	})

	// The socket's file appears when it is bound, a moment before it
	// listens: ready is when a dial succeeds.
	deadline := time.Now().Add(callBound)
	for {
		if conn, err := net.DialTimeout("unix", path, callBound); err == nil {
			conn.Close()
			return path
		}
		if time.Now().After(deadline) {
			t.Fatalf("future engine did not listen on %s within %v", path, callBound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A checker type the Engine names and this package does not know rejects
// that check only, with a reason naming the type; the reply's other checks
// convert, and a second fetch learns nothing new.
func TestHealthchecksRejectsUnknownCheckerByID(t *testing.T) {
	path := startFutureEngine(t)
	client := NewEngineClient(path, callBound)

	for round := range 2 {
		checks, err := client.Healthchecks(context.Background())
		if err != nil {
			t.Fatalf("round %d: Healthchecks: %v", round, err)
		}
		configs, rejected := ToConfigs(checks)
		if len(configs) != 1 || configs[0].ID != 1 || configs[0].Port != 80 {
			t.Errorf("round %d: configs = %+v, want the TCP check 1 on port 80",
				round, configs)
		}
		err = rejected[2]
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), futureCheckerName) {
			t.Errorf("round %d: check 2 rejected with %v, want %v naming %s",
				round, err, ErrUnsupported, futureCheckerName)
		}
		if len(rejected) != 1 {
			t.Errorf("round %d: rejected = %v, want check 2 only", round, rejected)
		}
	}
	standIns.Lock()
	learnt := len(standIns.names)
	standIns.Unlock()
	if learnt != 1 {
		t.Errorf("%d names learnt, want 1 (%s)", learnt, futureCheckerName)
	}
	if again, err := learnCheckerName(futureCheckerName); again || err != nil {
		t.Errorf("learning %s again = %v, %v; want false, nil",
			futureCheckerName, again, err)
	}
}

// An Engine whose own error reads as gob's for a name it does not know
// fails the fetch at once: no name is learnt from it, and the call is
// not made again.
func TestHealthchecksEngineErrorNamingAType(t *testing.T) {
	const name = "*healthcheck.EngineSideChecker"
	engine := &fakeEngine{
		err: fmt.Errorf("gob: name not registered for interface: %q", name),
	}
	client := NewEngineClient(serveRPC(t, "SeesawEngine", engine), callBound)
	ctx, cancel := context.WithTimeout(context.Background(), callBound)
	defer cancel()

	_, err := client.Healthchecks(ctx)
	var ee *EngineError
	if !errors.As(err, &ee) || !errors.Is(err, ErrEngine) {
		t.Errorf("Healthchecks: %v, want an *EngineError wrapping %v", err, ErrEngine)
	}
	engine.mu.Lock()
	calls := len(engine.contexts)
	engine.mu.Unlock()
	if calls != 1 {
		t.Errorf("engine saw %d calls, want 1", calls)
	}
	standIns.Lock()
	defer standIns.Unlock()
	for _, learnt := range standIns.names {
		if learnt == name {
			t.Errorf("%s learnt from the Engine's own error", name)
		}
	}
}

// A fetch learns one name a round, so its rounds need one more than the
// stand-ins.
func TestMaxLearnRounds(t *testing.T) {
	standIns.Lock()
	pool := len(standIns.free) + len(standIns.names)
	standIns.Unlock()
	if maxLearnRounds != pool+1 {
		t.Errorf("maxLearnRounds = %d, want %d stand-ins + 1", maxLearnRounds, pool)
	}
}

func TestUnregisteredName(t *testing.T) {
	tests := []struct {
		err  error
		want string
		ok   bool
	}{
		{nil, "", false},
		{errors.New("reading body EOF"), "", false},
		{errors.New(`reading body gob: name not registered for interface: "*healthcheck.X"`),
			"*healthcheck.X", true},
		{fmt.Errorf("calling m: %w", errors.New(
			`reading body gob: name not registered for interface: "a \"q\" b"`)),
			`a "q" b`, true},
		// The Engine's own text: not a name this side failed to decode.
		{newEngineError(methodHealthchecks,
			`gob: name not registered for interface: "*healthcheck.X"`), "", false},
	}
	for _, tt := range tests {
		got, ok := unregisteredName(tt.err)
		if got != tt.want || ok != tt.ok {
			t.Errorf("unregisteredName(%v) = %q, %v; want %q, %v",
				tt.err, got, ok, tt.want, tt.ok)
		}
	}
}
