// Command hcdemo runs the health checker the way a Seesaw node does,
// against real backends on loopback, and prints every change in the
// state of their checks as the Engine receives it.
//
// It starts a TCP echo server, a refused port, HTTP servers that answer
// 200, 503 and alternately 200 and 500, an HTTPS server with a
// self-signed certificate, a DNS server, a UDP echo server and a RADIUS
// server, all on 127.0.0.1, and a simulated Seesaw Engine whose cluster
// config checks each of them and 127.0.0.1 by ping. Then, by -mode:
//
//   - inprocess (the default): healthcheck-server runs the Engine bridge
//     itself: it fetches the checks from the Engine's socket and reports
//     their states back.
//   - split: healthcheck-proxy is the bridge, between the Engine and
//     healthcheck-server's JSON-lines socket.
//   - socket: no bridge; hcdemo sends the checks over the server's socket
//     and prints what the server reports there. -socket uses a server
//     that is already running instead of starting one.
//
// After -change_after the Engine drops one check and adds another, as a
// new cluster config would. Ctrl-C, SIGTERM or -duration stops and removes
// all of it.
//
// Exit status: 0 after a stop, 1 when the demo cannot start or a process
// it started goes away, 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// The modes of -mode.
const (
	modeInProcess = "inprocess"
	modeSplit     = "split"
	modeSocket    = "socket"
)

// options are hcdemo's settings, one per flag.
type options struct {
	// Mode is how the checks reach the server: modeInProcess (default),
	// modeSplit or modeSocket.
	Mode string
	// Server is the healthcheck-server binary to start. Default
	// "bin/healthcheck-server", where `make demo` builds it.
	Server string
	// Proxy is the healthcheck-proxy binary that modeSplit starts.
	// Default "bin/healthcheck-proxy".
	Proxy string
	// Socket, if set, is the proxy socket of a server that is already
	// running, for modeSocket only: hcdemo starts none, replaces that
	// server's checks with its own and removes them on exit. Default "".
	Socket string
	// Duration, if positive, stops the demo after that long. Default 0:
	// run until interrupted.
	Duration time.Duration
	// FlapPeriod is how long the flapping backend answers 200, and then
	// 500, before it turns. Default 4s.
	FlapPeriod time.Duration
	// ChangeAfter is when the Engine drops a check and adds another.
	// Default 12s; 0 never.
	ChangeAfter time.Duration
	// FetchInterval is how often the bridge fetches the checks from the
	// Engine. Default 2s.
	FetchInterval time.Duration
}

// defaultOptions returns the options the flags default to.
func defaultOptions() options {
	return options{
		Mode:          modeInProcess,
		Server:        "bin/healthcheck-server",
		Proxy:         "bin/healthcheck-proxy",
		FlapPeriod:    4 * time.Second,
		ChangeAfter:   12 * time.Second,
		FetchInterval: 2 * time.Second,
	}
}

// validate reports the first option that is out of range.
func (o options) validate() error {
	switch {
	case o.Mode != modeInProcess && o.Mode != modeSplit && o.Mode != modeSocket:
		return fmt.Errorf("-mode: want %s, %s or %s, got %q",
			modeInProcess, modeSplit, modeSocket, o.Mode)
	case o.Socket != "" && o.Mode != modeSocket:
		return fmt.Errorf("-socket: only with -mode %s", modeSocket)
	case o.Duration < 0:
		return errors.New("-duration: must not be negative")
	case o.FlapPeriod <= 0:
		return errors.New("-flap_period: must be positive")
	case o.ChangeAfter < 0:
		return errors.New("-change_after: must not be negative")
	case o.FetchInterval <= 0:
		return errors.New("-fetch_interval: must be positive")
	}
	return nil
}

func main() {
	o := defaultOptions()
	flag.StringVar(&o.Mode, "mode", o.Mode,
		"how checks reach the server: inprocess, split or socket")
	flag.StringVar(&o.Server, "server", o.Server,
		"healthcheck-server `binary` to start")
	flag.StringVar(&o.Proxy, "proxy", o.Proxy,
		"healthcheck-proxy `binary` to start in split mode")
	flag.StringVar(&o.Socket, "socket", o.Socket,
		"in socket mode, proxy socket `path` of a running server to use "+
			"instead (its checks are replaced)")
	flag.DurationVar(&o.Duration, "duration", o.Duration,
		"stop after this long; 0 runs until Ctrl-C")
	flag.DurationVar(&o.FlapPeriod, "flap_period", o.FlapPeriod,
		"how long the flapping backend stays up, then down")
	flag.DurationVar(&o.ChangeAfter, "change_after", o.ChangeAfter,
		"when the Engine drops a check and adds another; 0 never")
	flag.DurationVar(&o.FetchInterval, "fetch_interval", o.FetchInterval,
		"how often the bridge fetches the checks from the Engine")
	flag.Parse()
	if err := o.validate(); err != nil || flag.NArg() > 0 {
		if err != nil {
			fmt.Fprintf(os.Stderr, "hcdemo: %v\n", err)
		}
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
