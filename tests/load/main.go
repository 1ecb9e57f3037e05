// Command load is the load harness: it runs N checks against loopback
// backends in three designs, each in a process of its own, and prints one
// table of what each cost, next to the targets of issue 7.
//
// The designs: the probe floor (the same probes, run by a bounded pool
// of workers with no supervisor: once at the planned rate, once back to
// back), a naive design (a goroutine and a time.Ticker per check, as
// Seesaw's server is shaped) and the supervisor (the actor tree of
// package actors, in this process's child or, with -mode process, as
// bin/healthcheck-server). The backends are TCP and HTTP listeners on
// many addresses in 127.77.0.0/16, in a child process of their own; the
// simulated Engine runs in the coordinator and receives the supervisor's
// notifications.
//
// Run it with
//
//	go run ./tests/load -n 100000 -duration 60s
//
// or make bench. See README.md, Performance, for what each figure means.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// options are the coordinator's flags.
type options struct {
	n           int
	interval    time.Duration
	timeout     time.Duration
	duration    time.Duration
	floorWindow time.Duration
	mode        string
	out         string
	designs     string
	listeners   int
	ports       int
	httpEvery   int
	victims     float64
	closeFirst  bool
	resetClose  bool
	batchDelay  time.Duration
	notify      time.Duration
	server      string
	proxy       string
	// noProxy says why the split deployment is not measured when -proxy
	// names no file.
	noProxy      string
	profile      string
	floorWorkers int
}

func defaultOptions() options {
	return options{
		n:            100000,
		interval:     10 * time.Second,
		timeout:      5 * time.Second,
		duration:     60 * time.Second,
		mode:         "inprocess",
		designs:      "naive,supervisor,floor",
		ports:        4,
		httpEvery:    100,
		victims:      0.01,
		batchDelay:   100 * time.Millisecond,
		notify:       15 * time.Second,
		server:       "bin/healthcheck-server",
		proxy:        "bin/healthcheck-proxy",
		floorWorkers: 32,
	}
}

func (o *options) register(fs *flag.FlagSet) {
	fs.IntVar(&o.n, "n", o.n, "number of checks")
	fs.DurationVar(&o.interval, "interval", o.interval, "each check's interval")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "each check's timeout")
	fs.DurationVar(&o.duration, "duration", o.duration,
		"steady-state window of the naive design and the supervisor")
	fs.DurationVar(&o.floorWindow, "floor_window", o.floorWindow,
		"window of each floor run; 0 means a quarter of -duration, at least 2s")
	fs.StringVar(&o.mode, "mode", o.mode,
		"inprocess (the actor tree in a child process) or process (bin/healthcheck-server)")
	fs.StringVar(&o.out, "out", o.out, "also write the results as JSON to this file")
	fs.StringVar(&o.designs, "designs", o.designs,
		"comma-separated designs to run, in order: naive, supervisor, floor")
	fs.IntVar(&o.listeners, "listeners", o.listeners,
		"TCP backend listeners; 0 means N/100, between 16 and 1000")
	fs.IntVar(&o.ports, "ports", o.ports, "listeners per backend address")
	fs.IntVar(&o.httpEvery, "http_every", o.httpEvery,
		"every http_every-th check is an HTTP check; 0 for none")
	fs.Float64Var(&o.victims, "victims", o.victims,
		"share of TCP listeners the latency phase fails")
	fs.BoolVar(&o.closeFirst, "backend_close_first", o.closeFirst,
		"TCP backends close each connection at once instead of waiting for the prober")
	fs.BoolVar(&o.resetClose, "tcp_reset_close", o.resetClose,
		"every design closes its TCP probes with a reset, as the server's -tcp_reset_close")
	fs.DurationVar(&o.batchDelay, "batch_delay", o.batchDelay,
		"the supervisor's batch delay")
	fs.DurationVar(&o.notify, "notify_interval", o.notify,
		"how often the supervisor re-sends every check's status")
	fs.StringVar(&o.server, "server", o.server,
		"the healthcheck-server binary for -mode process")
	fs.StringVar(&o.proxy, "proxy", o.proxy,
		"the healthcheck-proxy binary that measures the split deployment's "+
			"notification latency (inprocess mode); \"\" or a missing file skips it")
	fs.StringVar(&o.profile, "profile", o.profile,
		"write CPU profiles of each steady window and heap profiles to this directory")
	fs.IntVar(&o.floorWorkers, "floor_workers", o.floorWorkers,
		"the floor's concurrent probes")
}

func main() {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(runRole(role))
	}
	opts := defaultOptions()
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	opts.register(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if err := opts.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		os.Exit(2)
	}
	rep, err := run(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
}

func (o *options) validate() error {
	switch {
	case o.n < 1:
		return fmt.Errorf("-n must be at least 1, got %d", o.n)
	case o.interval < 100*time.Millisecond:
		return fmt.Errorf("-interval must be at least 100ms, got %v", o.interval)
	case o.mode != "inprocess" && o.mode != "process":
		return fmt.Errorf("-mode must be inprocess or process, got %q", o.mode)
	case o.duration < time.Second:
		return fmt.Errorf("-duration must be at least 1s, got %v", o.duration)
	}
	for d := range strings.SplitSeq(o.designs, ",") {
		switch d {
		case roleNaive, roleInproc, roleFloor:
		default:
			return fmt.Errorf("-designs: unknown design %q", d)
		}
	}
	if o.floorWindow == 0 {
		o.floorWindow = max(o.duration/4, 2*time.Second)
	}
	if o.listeners == 0 {
		o.listeners = min(max(o.n/100, 16), 1000)
	}
	switch _, err := os.Stat(o.proxy); {
	case o.mode != "inprocess" || o.proxy == "":
		o.proxy = "" // the split deployment is not measured
	case err != nil:
		// Not measured either, and the table says why.
		o.noProxy = fmt.Sprintf("no proxy to run: %v", err)
		o.proxy = ""
	}
	return nil
}

// runRole runs this process as one of the coordinator's children and
// returns its exit status.
func runRole(role string) int {
	raiseFileLimit()
	var err error
	switch role {
	case roleBackends:
		err = runBackends()
	case roleFloor:
		err = runFloor()
	case roleNaive:
		err = runNaive()
	case roleInproc:
		err = runInproc()
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "load %s: %v\n", role, err)
		return 1
	}
	return 0
}
