// Command hcctl shows an operator what a running healthcheck-server is
// doing, and injects faults into it.
//
//	hcctl status [-state S] [-type T] [-id N] [-o table|json]
//	hcctl watch [-socket PATH] [-all]
//	hcctl tree [-o text|json] [-all]
//	hcctl health [-o text|json]
//	hcctl inject (-id N -fault F | -actor A) [-count K]
//	hcctl clear [-id N]
//
// status, tree and health ask the server's operators' listener
// (-metrics_addr, found with -addr); watch, inject and clear use its
// JSON-lines socket (-proxy_socket, found with -socket).
//
// Exit status: 0 on success, 1 on errors (and from health when the
// supervisor is not ok), 2 on usage errors.
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
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs hcctl with args (without the program name) and returns its
// exit status.
func run(args []string, stdout, stderr io.Writer) int {
	c := &cli{
		stdout: stdout,
		stderr: stderr,
		now:    time.Now,
		loc:    time.Local,
		color:  colorAllowed(stdout),
		width:  terminalWidth(stdout),
		interrupt: func() (context.Context, context.CancelFunc) {
			return signal.NotifyContext(context.Background(),
				os.Interrupt, syscall.SIGTERM)
		},
	}
	return c.run(args)
}

// cli is what an invocation of hcctl writes to and depends on; tests
// build their own with a fixed clock.
type cli struct {
	stdout, stderr io.Writer
	// now is the clock relative ages are measured against; loc is the
	// zone times are printed in.
	now func() time.Time
	loc *time.Location
	// color marks states with ANSI colours in watch's output.
	color bool
	// width is the status table's width in columns when -width is 0.
	width int
	// interrupt returns the context watch runs under, cancelled by
	// SIGINT or SIGTERM.
	interrupt func() (context.Context, context.CancelFunc)
}

// command is one of hcctl's subcommands.
type command struct {
	name    string
	summary string
	run     func(c *cli, args []string) error
}

// commands lists the subcommands in the order usage shows them.
var commands = []command{
	{"status", "list checks: state, since when, last probe, counters",
		(*cli).status},
	{"watch", "print state changes as they happen", (*cli).watch},
	{"tree", "show the live actor tree", (*cli).tree},
	{"health", "show whether the supervisor itself works", (*cli).health},
	{"inject", "inject a fault into a check or a singleton actor",
		(*cli).inject},
	{"clear", "clear the injected faults not yet suffered", (*cli).clear},
}

// run dispatches args to their subcommand and turns its error into an
// exit status.
func (c *cli) run(args []string) int {
	if len(args) == 0 {
		c.usage(c.stderr)
		return 2
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		return c.help(args)
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(c.stderr, "hcctl: unknown command %q; "+
			"run \"hcctl help\" for the list\n", name)
		return 2
	}
	return c.exit(name, cmd.run(c, args))
}

// exit reports err, if any, and returns the exit status it means.
func (c *cli) exit(name string, err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if ue.msg != "" {
			fmt.Fprintf(c.stderr, "hcctl %s: %s\n", name, ue.msg)
			fmt.Fprintf(c.stderr, "run \"hcctl help %s\" for its flags\n",
				name)
		}
		return 2
	case errors.Is(err, errUnhealthy):
		return 1
	}
	fmt.Fprintf(c.stderr, "hcctl: %v\n", err)
	return 1
}

// help prints the usage, or a command's flags.
func (c *cli) help(args []string) int {
	if len(args) == 0 {
		c.usage(c.stdout)
		return 0
	}
	cmd, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(c.stderr, "hcctl help: unknown command %q\n", args[0])
		return 2
	}
	h := *c
	h.stderr = c.stdout
	return c.exit(cmd.name, cmd.run(&h, []string{"-h"}))
}

// usage writes the list of commands to w.
func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, "hcctl shows and steers a running healthcheck-server.\n\n"+
		"Usage:\n\n\thcctl <command> [flags]\n\nCommands:\n\n")
	for _, cmd := range commands {
		fmt.Fprintf(w, "\t%-8s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, "\nstatus, tree and health ask the server's "+
		"-metrics_addr, found with -addr\n(default %s); watch, inject "+
		"and clear use its -proxy_socket,\nfound with -socket (default "+
		"%s).\n", defaultAddr, defaultSocket)
	fmt.Fprint(w, "\nRun \"hcctl help <command>\" for a command's flags.\n"+
		"Exit status: 0 on success, 1 on errors, 2 on usage errors.\n")
}

// lookup returns the command called name.
func lookup(name string) (command, bool) {
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd, true
		}
	}
	return command{}, false
}
