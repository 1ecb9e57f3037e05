package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Defaults of the flags that find the server: the defaults of
// healthcheck-server's -metrics_addr and -proxy_socket.
const (
	defaultAddr   = "127.0.0.1:10258"
	defaultSocket = "/var/run/seesaw/healthcheck-proxy.sock"
	// defaultTimeout bounds each HTTP request, and watch's wait for the
	// connection and the server's ready line.
	defaultTimeout = 5 * time.Second
)

// flagSet returns the flag set of command name, reporting to c.stderr,
// with synopsis as the first line of its usage.
func (c *cli) flagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("hcctl "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: hcctl %s %s\n\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// apiFlags are the flags of the commands that use the HTTP API.
type apiFlags struct {
	addr    string
	timeout time.Duration
}

// addAPIFlags adds -addr and -timeout to fs.
func addAPIFlags(fs *flag.FlagSet) *apiFlags {
	f := &apiFlags{}
	fs.StringVar(&f.addr, "addr", defaultAddr,
		"the server's operators' listener (its -metrics_addr), host:port")
	fs.DurationVar(&f.timeout, "timeout", defaultTimeout,
		"how long an HTTP request may take")
	return f
}

// client returns an API client for the flags.
func (f *apiFlags) client() (*apiClient, error) {
	if f.addr == "" {
		return nil, usagef("-addr: missing")
	}
	if f.timeout <= 0 {
		return nil, usagef("-timeout: must be positive, got %v", f.timeout)
	}
	return newAPIClient(f.addr, f.timeout), nil
}

// parse parses args into fs; hcctl takes no arguments after the flags.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments: %s",
			strings.Join(fs.Args(), " "))
	}
	return nil
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// oneOf checks that the value of flag name is one of want.
func oneOf(name, value string, want ...string) error {
	if slices.Contains(want, value) {
		return nil
	}
	return usagef("-%s: want %s, got %q", name, orList(want), value)
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " +
		words[len(words)-1]
}
