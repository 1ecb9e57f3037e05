package main

import (
	"fmt"

	"github.com/lbhealth/hcsupervisor/messages"
	"github.com/lbhealth/hcsupervisor/tests/faultinject"
)

// inject runs "hcctl inject": gives a check, or a singleton actor,
// faults to suffer, through the socket of a server started with
// -enable_fault_injection.
func (c *cli) inject(args []string) error {
	fs := c.flagSet("inject", "(-id N -fault F | -actor A) [-count K] "+
		"[-socket PATH]")
	socket := fs.String("socket", defaultSocket,
		"the server's JSON-lines socket (its -proxy_socket)")
	id := fs.Uint64("id", 0, "the check that suffers the faults")
	fault := fs.String("fault", "", "the check's fault: "+
		orList(faultNames()))
	actor := fs.String("actor", "", "crash this singleton instead: "+
		orList(messages.FaultActors))
	count := fs.Int("count", 1, "how many probes (or crashes) suffer it")
	if err := parse(fs, args); err != nil {
		return err
	}
	f, err := newInjectFault(isSet(fs, "id"), *id, *fault, *actor, *count)
	if err != nil {
		return err
	}

	return c.faultCall(*socket, func(fc *faultinject.Client) (string, error) {
		if f.Actor != "" {
			return fc.Crash(f.Actor, f.Count)
		}
		return fc.Inject(f.ID, f.Fault, f.Count)
	})
}

// newInjectFault checks inject's flags and returns the fault they ask
// for.
func newInjectFault(idSet bool, id uint64, fault, actor string,
	count int) (*messages.InjectFault, error) {
	f := &messages.InjectFault{ID: id, Actor: actor,
		Fault: messages.Fault(fault), Count: count}
	switch {
	case idSet == (actor != ""):
		return nil, usagef("give exactly one of -id and -actor")
	case actor != "" && fault == "":
		f.Fault = messages.FaultPanic
	case actor == "" && fault == "":
		return nil, usagef("-fault: missing; want %s",
			orList(faultNames()))
	}
	// The field names of Validate's errors are the flags' names.
	if err := f.Validate(); err != nil {
		return nil, usagef("-%v", err)
	}
	return f, nil
}

// clear runs "hcctl clear": drops the faults a check, or every check,
// has not suffered yet.
func (c *cli) clear(args []string) error {
	fs := c.flagSet("clear", "[-id N] [-socket PATH]")
	socket := fs.String("socket", defaultSocket,
		"the server's JSON-lines socket (its -proxy_socket)")
	id := fs.Uint64("id", 0, "the check to clear; without it, every check")
	if err := parse(fs, args); err != nil {
		return err
	}
	one := isSet(fs, "id")

	return c.faultCall(*socket, func(fc *faultinject.Client) (string, error) {
		if one {
			return fc.Clear(*id)
		}
		return fc.ClearAll()
	})
}

// faultCall connects to socket, makes one call and prints the server's
// acknowledgement.
func (c *cli) faultCall(socket string,
	call func(*faultinject.Client) (string, error)) error {
	fc, err := faultinject.Dial(socket)
	if err != nil {
		return explainSocket(socket, err, true)
	}
	defer fc.Close()
	ack, err := call(fc)
	if err != nil {
		return fmt.Errorf("%s: %w", socket, err)
	}
	_, err = fmt.Fprintln(c.stdout, ack)
	return err
}

// faultNames lists the faults as strings.
func faultNames() []string {
	names := make([]string, len(messages.Faults))
	for i, f := range messages.Faults {
		names[i] = string(f)
	}
	return names
}
