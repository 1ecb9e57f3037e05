package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// Timing of the demo's start and stop, and the server's settings.
const (
	// startTimeout bounds how long hcdemo waits for the bridge's first
	// fetch of the checks.
	startTimeout = 10 * time.Second
	// startPoll is the pause between two looks for that fetch.
	startPoll = 50 * time.Millisecond
	// statusWait bounds how long hcdemo waits for the final status on
	// exit.
	statusWait = 2 * time.Second
	// notifyInterval is the server's -notify_interval: how often it
	// re-sends every status, which prints a periodic status line.
	notifyInterval = 30 * time.Second
)

// demo is one run of the demo: the simulated Engine, and the processes
// and the connection that -mode asks for. It is not safe for concurrent
// use.
type demo struct {
	o    options
	plan demoPlan
	p    *printer
	e    *engine

	dir          string // temp dir of the sockets, or "" with -socket
	engineSocket string // in dir, in inprocess and split modes
	serverSocket string // in dir, in split and socket modes

	server *process // nil with -socket
	proxy  *process // split mode only
	client *client  // socket mode only
}

// run starts the backends and the demo that o asks for, prints to out
// what the Engine, or in socket mode the server, reports until ctx ends,
// and stops all of it. It returns nil when ctx ends, and an error when
// the demo could not start or a process it started went away.
func run(ctx context.Context, o options, out io.Writer, color bool) error {
	b, err := startBackends(o.FlapPeriod)
	if err != nil {
		return err
	}
	defer closeOrWarn("backends", b.Close)
	plan, err := newPlan(b, o.FlapPeriod)
	if err != nil {
		return err
	}

	d := &demo{o: o, plan: plan, p: newPrinter(out, color, plan.All())}
	defer closeOrWarn("demo", d.Close)
	if err := d.start(ctx); err != nil {
		return err
	}
	if err := d.watch(ctx); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "hcdemo: stopping")
	d.finish()
	return nil
}

// start makes the Engine serve the initial checks and starts what the
// mode asks for. Close undoes what it did, also when it fails.
func (d *demo) start(ctx context.Context) error {
	// In socket mode no bridge turns the Engine's IDs into the server's,
	// and small ones read better.
	var idBase uint64
	if d.o.Mode == modeSocket {
		idBase = 1
	}
	d.e = newEngine(d.p, idBase)
	if err := d.e.Serve(d.plan.Initial); err != nil {
		return err
	}
	if d.o.Socket != "" {
		return d.startSocket(ctx, d.o.Socket)
	}

	dir, err := os.MkdirTemp("", "hcdemo-")
	if err != nil {
		return fmt.Errorf("making temp dir: %w", err)
	}
	d.dir = dir
	if d.o.Mode == modeSocket {
		d.serverSocket = filepath.Join(dir, "hc.sock")
		return d.startSocket(ctx, d.serverSocket)
	}

	d.engineSocket = filepath.Join(dir, "engine.sock")
	if err := d.e.Listen(d.engineSocket); err != nil {
		return fmt.Errorf("simulated engine: %w", err)
	}
	if d.o.Mode == modeSplit {
		d.serverSocket = filepath.Join(dir, "hc.sock")
		return d.startSplit(ctx)
	}
	return d.startInProcess(ctx)
}

// startInProcess starts the server with the Engine bridge inside.
func (d *demo) startInProcess(ctx context.Context) error {
	d.header(fmt.Sprintf("hcdemo: healthcheck-server -engine fetches "+
		"them every %v and reports back: the bridge runs in-process",
		d.o.FetchInterval))
	var err error
	d.server, err = startProcess(d.o.Server, "server", d.serverArgs())
	if err != nil {
		return err
	}
	return d.awaitFetch(ctx)
}

// startSplit starts the server on its socket and, once the socket
// accepts, the proxy between it and the Engine.
func (d *demo) startSplit(ctx context.Context) error {
	d.header(fmt.Sprintf("hcdemo: healthcheck-proxy fetches them every "+
		"%v, hands them to healthcheck-server over %s and reports back",
		d.o.FetchInterval, d.serverSocket))
	var err error
	d.server, err = startProcess(d.o.Server, "server", d.serverArgs())
	if err != nil {
		return err
	}
	// Connect once, so that the proxy's first connect succeeds rather
	// than warn and retry; wait for ready, which the server would
	// otherwise fail to write.
	c, err := dial(ctx, d.serverSocket, d.server.Exited())
	if err != nil {
		return d.startError(err)
	}
	c.Close()

	d.proxy, err = startProcess(d.o.Proxy, "proxy", []string{
		"-engine_socket", d.engineSocket,
		"-server_socket", d.serverSocket,
		"-fetch_interval", d.o.FetchInterval.String(),
		// As the server's: a listener on a fixed port could be taken.
		"-metrics_addr=",
		"-log_format", "console",
		"-log_level", "warn",
	})
	if err != nil {
		return err
	}
	return d.awaitFetch(ctx)
}

// startSocket connects to the server on socket, starting it first unless
// -socket names a running one, and sends it the checks, converted as the
// bridge would.
func (d *demo) startSocket(ctx context.Context, socket string) error {
	if d.o.Socket == "" {
		var err error
		d.server, err = startProcess(d.o.Server, "server", d.serverArgs())
		if err != nil {
			return err
		}
	}
	var err error
	d.client, err = dial(ctx, socket, d.server.Exited())
	if err != nil {
		return d.startError(err)
	}

	d.p.Header([]string{
		fmt.Sprintf("hcdemo: %d checks of loopback backends, sent over "+
			"the server socket %s", len(d.plan.Initial), socket),
		"hcdemo: no Engine and no bridge: hcdemo converts the checks as " +
			"the bridge would and sends update_configs itself",
	}, "state changes as the server reports them (Ctrl-C to stop):")
	return d.sendConfigs()
}

// header prints the demo's header for the Engine modes, with how the
// checks reach the server.
func (d *demo) header(how string) {
	d.p.Header([]string{
		fmt.Sprintf("hcdemo: %d checks of loopback backends, served by a "+
			"simulated Seesaw Engine on %s", len(d.plan.Initial),
			d.engineSocket),
		how,
	}, "state changes as the Engine receives them (Ctrl-C to stop):")
}

// serverArgs returns the server's flags for the mode: the Engine bridge
// or the proxy socket, never both, and no metrics; only trouble is
// logged.
func (d *demo) serverArgs() []string {
	args := []string{
		"-metrics_addr=",
		"-log_format", "console",
		"-log_level", "warn",
		"-notify_interval", notifyInterval.String(),
	}
	if d.o.Mode == modeInProcess {
		return append(args,
			"-engine", d.engineSocket,
			"-proxy_socket=",
			"-fetch_interval", d.o.FetchInterval.String())
	}
	return append(args, "-engine=", "-proxy_socket", d.serverSocket)
}

// startError explains err, from waiting for the server's socket.
func (d *demo) startError(err error) error {
	if errors.Is(err, errExited) {
		return d.server.ExitedBefore("accepting connections")
	}
	return err
}

// awaitFetch waits until the bridge has fetched the checks from the
// Engine, so that a bridge that cannot reach it fails the demo at once.
func (d *demo) awaitFetch(ctx context.Context) error {
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(startPoll)
	defer poll.Stop()
	for !d.e.Fetched() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.server.Exited():
			return d.server.ExitedBefore("fetching the checks")
		case <-d.proxy.Exited():
			return d.proxy.ExitedBefore("fetching the checks")
		case <-deadline.C:
			return fmt.Errorf("the bridge did not fetch the checks "+
				"within %v", startTimeout)
		case <-poll.C:
		}
	}
	return nil
}

// watch prints what arrives until ctx ends, and makes the halfway
// change. It fails when a process exits or the server hangs up.
func (d *demo) watch(ctx context.Context) error {
	var change <-chan time.Time
	if d.o.ChangeAfter > 0 {
		t := time.NewTimer(d.o.ChangeAfter)
		defer t.Stop()
		change = t.C
	}
	// After the change, poll until the bridge has fetched it.
	poll := time.NewTicker(startPoll)
	defer poll.Stop()
	var fetchPoll <-chan time.Time
	var fetches uint64
	var msgs <-chan any
	var hungUp <-chan struct{}
	if d.client != nil {
		msgs, hungUp = d.client.Msgs, d.client.Done
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-change:
			fetches = d.e.Counts().Healthchecks
			if err := d.change(); err != nil {
				return err
			}
			if d.client == nil {
				fetchPoll = poll.C
			}
		case <-fetchPoll:
			if d.e.Counts().Healthchecks > fetches {
				fetchPoll = nil
				d.p.Note(fmt.Sprintf("engine: the bridge fetched the "+
					"change: %s stops, %s starts", d.plan.Remove,
					d.plan.Add.Name))
			}
		case msg := <-msgs:
			d.p.Print(msg)
		case <-hungUp:
			return fmt.Errorf("reading from server: %w", d.client.Err)
		case <-d.server.Exited():
			return d.server.ExitError()
		case <-d.proxy.Exited():
			return d.proxy.ExitError()
		}
	}
}

// change makes the Engine serve the plan's changed checks: it drops one
// and adds another, as a new cluster config would. In socket mode hcdemo
// sends the change itself.
func (d *demo) change() error {
	what := fmt.Sprintf("removed %s, added %s", d.plan.Remove,
		d.plan.Add.Name)
	if err := d.e.Serve(d.plan.Changed()); err != nil {
		return err
	}
	if d.client == nil {
		d.p.Note(fmt.Sprintf("engine: %s; the bridge fetches the change "+
			"within %v", what, d.o.FetchInterval))
		return nil
	}
	d.p.Note("hcdemo: " + what + "; sending update_configs")
	return d.sendConfigs()
}

// sendConfigs sends the checks the Engine serves over the socket.
func (d *demo) sendConfigs() error {
	configs, err := d.e.Configs()
	if err != nil {
		return err
	}
	err = d.client.Send(&messages.UpdateConfigs{Configs: configs})
	if err != nil {
		return fmt.Errorf("sending configs: %w", err)
	}
	return nil
}

// finish prints the final status of every check: the one the Engine
// holds or, in socket mode, the server's. A server hcdemo did not start
// is left without the demo's checks.
func (d *demo) finish() {
	defer d.p.Stop()
	if d.client == nil {
		statuses := d.e.Statuses()
		d.p.Statuses(fmt.Sprintf("status the Engine holds for %d checks, "+
			"as of their last notification:", len(statuses)), statuses, false)
		c := d.e.Counts()
		d.p.Note(fmt.Sprintf("engine: %d Healthchecks calls answered, %d "+
			"notifications in %d HealthState calls", c.Healthchecks,
			c.Notifications, c.HealthState))
		return
	}

	if err := finalStatus(d.client, d.p); err != nil {
		fmt.Fprintf(os.Stderr, "hcdemo: final status: %v\n", err)
	}
	if d.server == nil {
		// The backends are about to close.
		if err := d.client.Send(&messages.UpdateConfigs{}); err != nil {
			fmt.Fprintf(os.Stderr, "hcdemo: removing checks: %v\n", err)
		}
	}
}

// Close closes the connection, stops the proxy, so that it flushes to
// the Engine, then the server, then the Engine, and removes the temp dir.
func (d *demo) Close() error {
	var errs []error
	if d.client != nil {
		errs = append(errs, d.client.Close())
	}
	errs = append(errs, d.proxy.Stop(processStop),
		d.server.Stop(processStop))
	if d.e != nil {
		errs = append(errs, d.e.Close())
	}
	if d.dir != "" {
		errs = append(errs, os.RemoveAll(d.dir))
	}
	return errors.Join(errs...)
}

// finalStatus asks the server for every check's status and prints the
// answer, waiting at most statusWait.
func finalStatus(c *client, p *printer) error {
	if err := c.Send(&messages.RequestStatus{}); err != nil {
		return err
	}
	t := time.NewTimer(statusWait)
	defer t.Stop()
	for {
		select {
		case msg := <-c.Msgs:
			p.Print(msg)
			if _, ok := msg.(*messages.StatusResponse); ok {
				return nil
			}
		case <-c.Done:
			return c.Err
		case <-t.C:
			return errors.New("no status_response within " +
				statusWait.String())
		}
	}
}

// closeOrWarn calls closeFn and reports its error on stderr.
func closeOrWarn(what string, closeFn func() error) {
	if err := closeFn(); err != nil {
		fmt.Fprintf(os.Stderr, "hcdemo: closing %s: %v\n", what, err)
	}
}
