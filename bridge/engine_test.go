package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lbhealth/hcsupervisor/messages"
)

// callBound is how long a call that must fail by a deadline or a
// cancellation may take beyond it, generous for loaded -race runs.
const callBound = 5 * time.Second

// fakeEngine is the SeesawEngine RPC service of a Seesaw Engine, reduced to
// the two RPCs the healthcheck component makes, on this package's types.
type fakeEngine struct {
	mu       sync.Mutex
	checks   map[uint64]*Config // returned by Healthchecks
	err      error              // returned by every call when set
	contexts []Context          // of every call
	received []*Notification    // by HealthState, in order
}

// Healthchecks returns the configured checks to a trusted caller.
func (f *fakeEngine) Healthchecks(c *Context, reply *Checks) error {
	if err := f.admit(c); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	reply.Configs = f.checks
	return nil
}

// HealthState records the notifications of a trusted caller.
func (f *fakeEngine) HealthState(args *HealthState, reply *int) error {
	if err := f.admit(args.Ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.received = append(f.received, args.Notifications...)
	return nil
}

// admit records c and returns the Engine's error for a call with it, as
// Seesaw's Engine does: only a trusted context is admitted.
func (f *fakeEngine) admit(c *Context) error {
	if c == nil {
		return errors.New("context is nil")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.contexts = append(f.contexts, *c)
	switch {
	case f.err != nil:
		return f.err
	case c.AuthType != AuthTrusted:
		return errors.New("insufficient access")
	}
	return nil
}

// serveRPC serves rcvr under name on a new unix socket and returns the
// socket's path.
func serveRPC(t *testing.T, name string, rcvr any) string {
	t.Helper()
	srv := rpc.NewServer()
	if err := srv.RegisterName(name, rcvr); err != nil {
		t.Fatal(err)
	}
	return serveUnix(t, func(conn net.Conn) { srv.ServeConn(conn) })
}

// serveUnix listens on a new unix socket in t.TempDir() and runs handle
// for every connection, each in a goroutine. At cleanup it stops
// listening, closes every connection and waits for the handlers.
func serveUnix(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "e.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		conns    []net.Conn
		handlers sync.WaitGroup
		accepted = make(chan struct{})
	)
	go func() {
		defer close(accepted)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			handlers.Go(func() { handle(conn) })
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-accepted
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		handlers.Wait()
	})
	return path
}

// serveHung serves a socket whose server reads every request and never
// answers. It sends on the returned channel whenever it accepts a
// connection.
func serveHung(t *testing.T) (string, <-chan struct{}) {
	accepted := make(chan struct{}, 16)
	path := serveUnix(t, func(conn net.Conn) {
		accepted <- struct{}{}
		io.Copy(io.Discard, conn)
	})
	return path, accepted
}

func TestNewEngineClient(t *testing.T) {
	tests := []struct {
		socket      string
		timeout     time.Duration
		wantSocket  string
		wantTimeout time.Duration
	}{
		{"", 0, DefaultEngineSocket, DefaultEngineTimeout},
		{"/x.sock", -time.Second, "/x.sock", DefaultEngineTimeout},
		{"/x.sock", time.Second, "/x.sock", time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q %v", tt.socket, tt.timeout), func(t *testing.T) {
			c := NewEngineClient(tt.socket, tt.timeout)
			if c.socket != tt.wantSocket || c.timeout != tt.wantTimeout {
				t.Errorf("got socket %q timeout %v, want %q %v",
					c.socket, c.timeout, tt.wantSocket, tt.wantTimeout)
			}
		})
	}
}

func TestEngineClientHealthchecks(t *testing.T) {
	tests := []struct {
		name   string
		checks map[uint64]*Config
	}{
		{name: "no checks"},
		{name: "golden checks", checks: checksOf(goldenCheckers()).Configs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			engine := &fakeEngine{checks: tt.checks}
			c := NewEngineClient(serveRPC(t, "SeesawEngine", engine), time.Minute)

			got, err := c.Healthchecks(t.Context())
			if err != nil {
				t.Fatalf("Healthchecks: %v", err)
			}
			if diff := cmp.Diff(&Checks{Configs: tt.checks}, got); diff != "" {
				t.Errorf("Healthchecks mismatch (-want +got):\n%s", diff)
			}
			checkContexts(t, engine, 1)
		})
	}
}

// checkContexts checks that the engine saw n calls, each with the trusted
// context of this process.
func checkContexts(t *testing.T, engine *fakeEngine, n int) {
	t.Helper()
	engine.mu.Lock()
	defer engine.mu.Unlock()
	if len(engine.contexts) != n {
		t.Fatalf("engine saw %d calls, want %d", len(engine.contexts), n)
	}
	want := *NewTrustedContext()
	for i, got := range engine.contexts {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("context of call %d mismatch (-want +got):\n%s", i, diff)
		}
	}
	if want.AuthType != 2 || want.Peer.Component != 4 ||
		want.Peer.Identity != fmt.Sprintf("healthcheck [pid %d]", os.Getpid()) {
		t.Errorf("NewTrustedContext() = %+v, not trusted from the healthcheck", want)
	}
}

func TestEngineClientHealthState(t *testing.T) {
	lastCheck := time.Date(2026, 12, 3, 18, 10, 43, 871893286, time.UTC)
	tests := []struct {
		name  string
		batch []messages.CheckStatus
	}{
		{name: "empty batch"},
		{name: "batch", batch: []messages.CheckStatus{
			{ID: 1 << 63, Status: messages.Status{
				State:     messages.StateHealthy,
				Message:   "TCP connect to 127.0.0.1:22",
				LastCheck: lastCheck,
				Duration:  time.Millisecond,
				Successes: 3,
				Failures:  1,
				Restarts:  2,
			}},
			{ID: 2, Status: messages.Status{State: messages.StateUnhealthy}},
			{ID: 3},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			engine := &fakeEngine{}
			c := NewEngineClient(serveRPC(t, "SeesawEngine", engine), time.Minute)

			if err := c.HealthState(t.Context(), tt.batch); err != nil {
				t.Fatalf("HealthState: %v", err)
			}
			var want []*Notification
			for _, cs := range tt.batch {
				want = append(want, FromStatus(cs))
			}
			engine.mu.Lock()
			got := engine.received
			engine.mu.Unlock()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("notifications mismatch (-want +got):\n%s", diff)
			}
			checkContexts(t, engine, 1)
		})
	}
}

// TestEngineClientConcurrent makes calls from many goroutines at once, for
// the race detector.
func TestEngineClientConcurrent(t *testing.T) {
	engine := &fakeEngine{checks: checksOf(goldenCheckers()).Configs}
	c := NewEngineClient(serveRPC(t, "SeesawEngine", engine), time.Minute)

	const calls = 20
	errs := make(chan error, 2*calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			_, err := c.Healthchecks(t.Context())
			errs <- err
		})
		wg.Go(func() {
			errs <- c.HealthState(t.Context(), []messages.CheckStatus{{ID: uint64(i)}})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	checkContexts(t, engine, 2*calls)
}

// engineCalls are the client's two calls, for tests that run both.
var engineCalls = []struct {
	name string
	call func(context.Context, *EngineClient) error
}{
	{"Healthchecks", func(ctx context.Context, c *EngineClient) error {
		_, err := c.Healthchecks(ctx)
		return err
	}},
	{"HealthState", func(ctx context.Context, c *EngineClient) error {
		return c.HealthState(ctx, []messages.CheckStatus{{ID: 1}})
	}},
}

func TestEngineClientEngineErrors(t *testing.T) {
	tests := []struct {
		text string
		want error
	}{
		{"insufficient access", ErrAccess},
		{`insufficient access: user "x" is not authorized to control "y"`, ErrAccess},
		{"context is nil", ErrContext},
		{"args is nil", ErrArgs},
		{"healthcheck manager is on fire", ErrEngine},
	}
	for _, tt := range tests {
		for _, ec := range engineCalls {
			t.Run(ec.name+"/"+tt.text, func(t *testing.T) {
				engine := &fakeEngine{err: errors.New(tt.text)}
				c := NewEngineClient(serveRPC(t, "SeesawEngine", engine), time.Minute)

				err := ec.call(t.Context(), c)
				checkEngineError(t, err, tt.want, tt.text)
			})
		}
	}
}

// checkEngineError checks that err is an *EngineError that wraps want and
// an rpc.ServerError with text.
func checkEngineError(t *testing.T, err, want error, text string) {
	t.Helper()
	var ee *EngineError
	if !errors.As(err, &ee) {
		t.Fatalf("got %v (%T), want an *EngineError", err, err)
	}
	if !errors.Is(err, want) {
		t.Errorf("got %v (wrapping %v), want it to wrap %v", err, ee.Err, want)
	}
	var se rpc.ServerError
	if !errors.As(err, &se) || string(se) != text || ee.Text != text {
		t.Errorf("got text %q, server error %q, want %q", ee.Text, se, text)
	}
	if !strings.HasSuffix(err.Error(), ": "+text) {
		t.Errorf("got message %q, want it to end in the Engine's text %q", err, text)
	}
}

// TestFakeEngineUntrusted checks that the fake, like Seesaw's Engine,
// refuses an untrusted context, and that the client maps the refusal.
func TestFakeEngineUntrusted(t *testing.T) {
	engine := &fakeEngine{}
	path := serveRPC(t, "SeesawEngine", engine)
	client, err := rpc.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	untrusted := NewTrustedContext()
	untrusted.AuthType = 3
	err = client.Call(methodHealthchecks, untrusted, &Checks{})
	if err == nil {
		t.Fatal("untrusted Healthchecks: got no error")
	}
	var se rpc.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("got %v (%T), want an rpc.ServerError", err, err)
	}
	checkEngineError(t, newEngineError(methodHealthchecks, string(se)),
		ErrAccess, "insufficient access")
}

func TestEngineClientNotAnEngine(t *testing.T) {
	for _, ec := range engineCalls {
		t.Run(ec.name, func(t *testing.T) {
			path := serveRPC(t, "SeesawNCC", &fakeEngine{})
			err := ec.call(t.Context(), NewEngineClient(path, time.Minute))
			checkEngineError(t, err, ErrUnknownMethod,
				"rpc: can't find service SeesawEngine."+ec.name)
		})
	}
}

func TestEngineClientDialErrors(t *testing.T) {
	// A socket file nobody listens on, as a crashed Engine leaves behind.
	stale := filepath.Join(t.TempDir(), "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()

	tests := []struct {
		name string
		path string
		want error
	}{
		{"missing socket", filepath.Join(t.TempDir(), "none.sock"), fs.ErrNotExist},
		{"stale socket", stale, nil},
	}
	for _, tt := range tests {
		for _, ec := range engineCalls {
			t.Run(tt.name+"/"+ec.name, func(t *testing.T) {
				err := ec.call(t.Context(), NewEngineClient(tt.path, time.Minute))
				if !errors.Is(err, ErrDial) {
					t.Fatalf("got %v, want it to wrap ErrDial", err)
				}
				if tt.want != nil && !errors.Is(err, tt.want) {
					t.Errorf("got %v, want it to wrap %v", err, tt.want)
				}
				if !strings.Contains(err.Error(), tt.path) {
					t.Errorf("got %q, want it to name %s", err, tt.path)
				}
			})
		}
	}
}

// TestEngineClientHungEngine checks that a call to an Engine that accepts
// and never answers ends by the client's timeout, by ctx's deadline, or
// when ctx is cancelled.
func TestEngineClientHungEngine(t *testing.T) {
	const short = 200 * time.Millisecond
	tests := []struct {
		name    string
		timeout time.Duration // of the client
		ctx     func(context.Context) (context.Context, context.CancelFunc)
		cancel  bool // cancel once the Engine has accepted
		want    error
	}{
		{
			name:    "client timeout",
			timeout: short,
			ctx:     context.WithCancel,
			want:    context.DeadlineExceeded,
		},
		{
			name:    "ctx deadline",
			timeout: time.Hour,
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, short)
			},
			want: context.DeadlineExceeded,
		},
		{
			name:    "ctx cancelled",
			timeout: time.Hour,
			ctx:     context.WithCancel,
			cancel:  true,
			want:    context.Canceled,
		},
	}
	for _, tt := range tests {
		for _, ec := range engineCalls {
			t.Run(tt.name+"/"+ec.name, func(t *testing.T) {
				path, accepted := serveHung(t)
				c := NewEngineClient(path, tt.timeout)
				start := time.Now()
				ctx, cancel := tt.ctx(t.Context())
				defer cancel()

				done := make(chan error, 1)
				go func() { done <- ec.call(ctx, c) }()
				if tt.cancel {
					<-accepted
					cancel()
				}

				select {
				case err := <-done:
					if !errors.Is(err, tt.want) {
						t.Errorf("got %v, want it to wrap %v", err, tt.want)
					}
					if d := time.Since(start); !tt.cancel && d < short {
						t.Errorf("returned after %v, before the deadline %v", d, short)
					}
				case <-time.After(short + callBound):
					t.Fatalf("call still running after %v", short+callBound)
				}
			})
		}
	}
}

func TestNewEngineError(t *testing.T) {
	tests := []struct {
		text string
		want error
	}{
		{"insufficient access", ErrAccess},
		{"context is nil", ErrContext},
		{"args is nil", ErrArgs},
		{"rpc: can't find service SeesawEngine.X", ErrUnknownMethod},
		{"rpc: can't find method SeesawEngine.X", ErrUnknownMethod},
		{"rpc: service/method request ill-formed: X", ErrUnknownMethod},
		{"", ErrEngine},
		{"Insufficient access", ErrEngine},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			checkEngineError(t, newEngineError("M", tt.text), tt.want, tt.text)
		})
	}
}
