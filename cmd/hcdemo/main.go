// Command hcdemo runs healthcheck-server against real backends on
// loopback and prints every change in the state of their checks.
//
// It starts a TCP echo server, a refused port, HTTP servers that answer
// 200, 503 and alternately 200 and 500, an HTTPS server with a self-signed
// certificate and a DNS server, all on 127.0.0.1; starts the server on a
// socket in a temp dir, or uses the one -socket names; and stops and
// removes all of it on Ctrl-C, on SIGTERM or after -duration.
//
// Exit status: 0 after a stop, 1 when the demo cannot start or the server
// goes away, 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// statusWait bounds how long hcdemo waits for the final status on exit.
const statusWait = 2 * time.Second

// options are hcdemo's settings, one per flag.
type options struct {
	// Server is the healthcheck-server binary to start. Default
	// "bin/healthcheck-server", where `make demo` builds it.
	Server string
	// Socket, if set, is the proxy socket of a server that is already
	// running: hcdemo starts none, replaces that server's checks with its
	// own and removes them on exit. Default "".
	Socket string
	// Duration, if positive, stops the demo after that long. Default 0:
	// run until interrupted.
	Duration time.Duration
	// FlapPeriod is how long the flapping backend answers 200, and then
	// 500, before it turns. Default 4s.
	FlapPeriod time.Duration
}

// defaultOptions returns the options the flags default to.
func defaultOptions() options {
	return options{
		Server:     "bin/healthcheck-server",
		FlapPeriod: 4 * time.Second,
	}
}

func main() {
	o := defaultOptions()
	flag.StringVar(&o.Server, "server", o.Server,
		"healthcheck-server `binary` to start")
	flag.StringVar(&o.Socket, "socket", o.Socket,
		"proxy socket `path` of a running server to use instead "+
			"(its checks are replaced)")
	flag.DurationVar(&o.Duration, "duration", o.Duration,
		"stop after this long; 0 runs until Ctrl-C")
	flag.DurationVar(&o.FlapPeriod, "flap_period", o.FlapPeriod,
		"how long the flapping backend stays up, then down")
	flag.Parse()
	if flag.NArg() > 0 || o.FlapPeriod <= 0 || o.Duration < 0 {
		flag.Usage()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(),
		os.Interrupt, syscall.SIGTERM)
	if o.Duration > 0 {
		ctx, stop = withTimeout(ctx, stop, o.Duration)
	}
	err := run(ctx, o, os.Stdout, wantColor(os.Stdout))
	// An error after Ctrl-C or -duration is part of stopping.
	failed := err != nil && ctx.Err() == nil
	stop()
	if failed {
		fmt.Fprintf(os.Stderr, "hcdemo: %v\n", err)
		os.Exit(1)
	}
}

// withTimeout is context.WithTimeout whose cancel also calls stop.
func withTimeout(
	ctx context.Context, stop func(), d time.Duration,
) (context.Context, func()) {
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, func() { cancel(); stop() }
}

// wantColor reports whether f is a terminal and NO_COLOR is unset.
func wantColor(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 &&
		os.Getenv("NO_COLOR") == ""
}

// run starts the backends and a session with the server, sends the checks
// and prints to out what the server reports until ctx ends. It returns nil
// when ctx ends, and an error when the demo could not start or the server
// went away.
func run(ctx context.Context, o options, out io.Writer, color bool) error {
	b, err := startBackends(o.FlapPeriod)
	if err != nil {
		return err
	}
	defer closeOrWarn("backends", b.Close)

	s, err := openSession(ctx, o)
	if err != nil {
		return err
	}
	defer closeOrWarn("server", s.Close)

	checks := demoChecks(b, o.FlapPeriod)
	p := newPrinter(out, color, checks)
	p.Header(s.Socket)
	err = s.Send(&messages.UpdateConfigs{Configs: configs(checks)})
	if err != nil {
		return fmt.Errorf("sending configs: %w", err)
	}
	if err := watch(ctx, s, p); err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "hcdemo: stopping")
	if err := finalStatus(s, p); err != nil {
		fmt.Fprintf(os.Stderr, "hcdemo: final status: %v\n", err)
	}
	if s.server == nil {
		// Leave a server we did not start without checks of backends
		// that are about to close.
		if err := s.Send(&messages.UpdateConfigs{}); err != nil {
			fmt.Fprintf(os.Stderr, "hcdemo: removing checks: %v\n", err)
		}
	}
	return nil
}

// configs returns the configs of checks.
func configs(checks []demoCheck) []messages.Config {
	cs := make([]messages.Config, len(checks))
	for i, c := range checks {
		cs[i] = c.Config
	}
	return cs
}

// watch prints what the server sends until ctx ends, the connection ends
// or the server exits.
func watch(ctx context.Context, s *session, p *printer) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg := <-s.Msgs:
			p.Print(msg)
		case <-s.Done:
			return fmt.Errorf("reading from server: %w", s.Err)
		case <-s.exited():
			return fmt.Errorf("server exited: %v", s.server.err)
		}
	}
}

// finalStatus asks for every check's status and prints the answer,
// waiting at most statusWait.
func finalStatus(s *session, p *printer) error {
	if err := s.Send(&messages.RequestStatus{}); err != nil {
		return err
	}
	t := time.NewTimer(statusWait)
	defer t.Stop()
	for {
		select {
		case msg := <-s.Msgs:
			p.Print(msg)
			if _, ok := msg.(*messages.StatusResponse); ok {
				return nil
			}
		case <-s.Done:
			return s.Err
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
