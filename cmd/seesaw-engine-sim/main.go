// Command seesaw-engine-sim simulates a Seesaw Engine for healthcheck
// components: it serves the checks of a file on the Engine's socket and
// prints every notification it receives.
//
// Usage:
//
//	seesaw-engine-sim -config checks.yaml [-socket path] [-quiet]
//	    [-log_format json|console] [-log_level info]
//
// The file is JSON or YAML, as enginesim.LoadFile reads it. It is
// reloaded when it changes and on SIGHUP; an invalid file is reported
// and the previous checks stay. SIGINT and SIGTERM stop the simulator,
// which then logs its counts.
//
// Exit status: 0 after a clean stop, 1 when it cannot start or stop
// cleanly, 2 for bad flags.
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

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/bridge"
)

// options holds the command's flags.
type options struct {
	socket    string
	config    string
	logFormat string
	logLevel  string
	quiet     bool
}

// defaultOptions returns the flags' defaults: the Engine's socket path.
func defaultOptions() options {
	return options{
		socket:    bridge.DefaultEngineSocket,
		logFormat: "console",
		logLevel:  "info",
	}
}

// register defines the flags on fs.
func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.socket, "socket", o.socket, "unix socket to serve the Engine's RPCs on")
	fs.StringVar(&o.config, "config", o.config,
		"checks file, .json, .yaml or .yml (required)")
	fs.StringVar(&o.logFormat, "log_format", o.logFormat, "json or console")
	fs.StringVar(&o.logLevel, "log_level", o.logLevel,
		"debug, info, warn or error; debug logs every RPC")
	fs.BoolVar(&o.quiet, "quiet", o.quiet, "do not print notifications")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command with args, printing notifications to stdout and
// logging to stderr, and returns its exit status.
func run(args []string, stdout, stderr io.Writer) int {
	o := defaultOptions()
	fs := flag.NewFlagSet("seesaw-engine-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := o.validate(fs); err != nil {
		fmt.Fprintf(stderr, "seesaw-engine-sim: %v\n", err)
		return 2
	}
	logger, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "seesaw-engine-sim: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(),
		syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	if err := serve(ctx, o, hup, stdout, logger); err != nil {
		logger.Error().Str("error", oneLine(err)).Msg("simulator_failed")
		return 1
	}
	return 0
}

// validate checks the flags that have no usable default.
func (o *options) validate(fs *flag.FlagSet) error {
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	case o.config == "":
		return errors.New("-config: missing")
	case o.socket == "":
		return errors.New("-socket: missing")
	}
	return nil
}

// newLogger builds the one logger of the process.
func newLogger(w io.Writer, format, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("-log_level: unknown level %q", level)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly,
			NoColor: !isTerminal(w)}
	default:
		return zerolog.Logger{}, fmt.Errorf("-log_format: want json or console, got %q",
			format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
