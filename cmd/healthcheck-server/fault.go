package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/lbhealth/hcsupervisor/messages"
	"github.com/lbhealth/hcsupervisor/tests/faultinject"
)

// runFault runs the inject and clear subcommands against a running server
// (one started with -enable_fault_injection):
//
//	healthcheck-server inject -socket PATH -id N -fault panic|hang|error|slow|flap [-count K]
//	healthcheck-server inject -socket PATH -actor notifier|manager|proxy|bridge [-count K]
//	healthcheck-server clear -socket PATH [-id N]
func runFault(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck-server "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", defaultConfig().proxySocket, "the server's JSON-lines socket")
	id := fs.Uint64("id", 0, "the check's id")
	idSet := false
	if cmd == "inject" {
		fault := fs.String("fault", string(messages.FaultPanic), "panic, hang, error, slow or flap")
		count := fs.Int("count", 1, "how many probes (or crashes) suffer it")
		actor := fs.String("actor", "", "crash a singleton instead of a check")
		if err := fs.Parse(args); err != nil {
			return 2
		}
		fs.Visit(func(f *flag.Flag) { idSet = idSet || f.Name == "id" })
		if idSet == (*actor != "") {
			fmt.Fprintln(stderr, "healthcheck-server inject: give exactly one of -id and -actor")
			return 2
		}
		if *actor != "" {
			// The client's Crash sends no fault: the rules of what an
			// actor accepts are the message's.
			f := messages.InjectFault{Actor: *actor, Fault: messages.Fault(*fault),
				Count: *count}
			if err := f.Validate(); err != nil {
				fmt.Fprintf(stderr, "healthcheck-server inject: -actor %s -fault %s: %v\n",
					*actor, *fault, err)
				return 2
			}
		}
		return faultCall(*socket, stdout, stderr, func(c *faultinject.Client) (string, error) {
			if *actor != "" {
				return c.Crash(*actor, *count)
			}
			return c.Inject(*id, messages.Fault(*fault), *count)
		})
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fs.Visit(func(f *flag.Flag) { idSet = idSet || f.Name == "id" })
	return faultCall(*socket, stdout, stderr, func(c *faultinject.Client) (string, error) {
		if idSet {
			return c.Clear(*id)
		}
		return c.ClearAll()
	})
}

// faultCall connects, makes one call and prints its answer.
func faultCall(socket string, stdout, stderr io.Writer,
	call func(*faultinject.Client) (string, error)) int {
	c, err := faultinject.Dial(socket)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck-server: %v\n", err)
		return 1
	}
	defer c.Close()
	ack, err := call(c)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck-server: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, ack)
	return 0
}
