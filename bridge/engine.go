package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/rpc"
	"os"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// DefaultEngineSocket is where a Seesaw Engine listens.
const DefaultEngineSocket = "/var/run/seesaw/engine/engine.sock"

// DefaultEngineTimeout bounds one Engine RPC, dial included, when
// NewEngineClient is given none. It is Seesaw's.
const DefaultEngineTimeout = 10 * time.Second

// The Engine's RPCs the healthcheck component calls.
const (
	methodHealthchecks = "SeesawEngine.Healthchecks"
	methodHealthState  = "SeesawEngine.HealthState"
)

// EngineClient calls a Seesaw Engine's RPCs over its unix socket. Like
// Seesaw, it opens a new connection for every call, so an Engine restart
// costs at most the calls in flight. The zero value is not usable; an
// EngineClient is safe for concurrent use.
type EngineClient struct {
	socket  string
	timeout time.Duration
}

// NewEngineClient returns a client of the Engine listening on socketPath
// (DefaultEngineSocket when empty). timeout bounds each call, dial
// included; zero or negative means DefaultEngineTimeout.
func NewEngineClient(socketPath string, timeout time.Duration) *EngineClient {
	if socketPath == "" {
		socketPath = DefaultEngineSocket
	}
	if timeout <= 0 {
		timeout = DefaultEngineTimeout
	}
	return &EngineClient{socket: socketPath, timeout: timeout}
}

// Healthchecks fetches the checks the Engine wants run. A reply whose
// Configs is nil means the Engine wants none. Errors the Engine returns are
// *EngineError; a call that runs out of time wraps
// context.DeadlineExceeded, and one whose ctx is cancelled wraps
// context.Canceled.
//
// A check whose checker type this package does not know arrives with a
// stand-in Checker that ToConfig rejects by name, so that the other checks
// still run. Learning such a name costs one more call.
func (e *EngineClient) Healthchecks(ctx context.Context) (*Checks, error) {
	// Every round but the last learns a name, so the stand-in pool
	// bounds the rounds; maxLearnRounds bounds them again.
	for range maxLearnRounds {
		var checks Checks
		err := e.call(ctx, methodHealthchecks, NewTrustedContext(), &checks)
		name, unknown := unregisteredName(err)
		if !unknown {
			if err != nil {
				return nil, err
			}
			return &checks, nil
		}
		learnt, lerr := learnCheckerName(name)
		switch {
		case lerr != nil:
			return nil, fmt.Errorf("calling %s: %w", methodHealthchecks, lerr)
		case !learnt:
			// Asking again would fail the same way.
			return nil, err
		}
	}
	return nil, fmt.Errorf("calling %s: %w: still unknown after %d rounds",
		methodHealthchecks, ErrUnknownCheckers, maxLearnRounds)
}

// HealthState tells the Engine the statuses in batch. The Engine ignores
// IDs it does not know. Errors are as for Healthchecks.
func (e *EngineClient) HealthState(ctx context.Context,
	batch []messages.CheckStatus) error {

	args := &HealthState{
		Ctx:           NewTrustedContext(),
		Notifications: make([]*Notification, len(batch)),
	}
	// One array for the batch, not an allocation per notification.
	notes := make([]Notification, len(batch))
	for i, cs := range batch {
		notes[i] = notification(cs)
		args.Notifications[i] = &notes[i]
	}
	var reply int
	return e.call(ctx, methodHealthState, args, &reply)
}

// call makes one RPC on a connection of its own, bounded by e.timeout and
// ctx, whichever ends first.
func (e *EngineClient) call(ctx context.Context, method string, args, reply any) error {
	if registerErr != nil {
		return fmt.Errorf("calling %s: %w", method, registerErr)
	}
	deadline := time.Now().Add(e.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", e.socket)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDial, timeoutError(ctx, err))
	}

	// Bound the whole exchange, and end it early when ctx ends: closing
	// the connection fails a call blocked in a read or write.
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return fmt.Errorf("calling %s: setting deadline: %w", method, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	// NOTE: Close does not wait for the client's reader goroutine, which
	// net/rpc starts and owns; it returns as soon as the closed connection
	// fails its read.
	client := rpc.NewClient(conn)
	defer client.Close()

	err = client.Call(method, args, reply)
	var se rpc.ServerError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return newEngineError(method, string(se))
	default:
		return fmt.Errorf("calling %s: %w", method, timeoutError(ctx, err))
	}
}

// timeoutError returns err, wrapping also ctx's error when ctx has ended
// and context.DeadlineExceeded when err is a connection's deadline, so
// that callers can tell a timeout or a cancellation with errors.Is.
func timeoutError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%w: %w", ctxErr, err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) &&
		!errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}
