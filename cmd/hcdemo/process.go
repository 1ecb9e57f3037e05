package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// processStop is how long a child process gets to exit after SIGTERM
// before it is killed.
const processStop = 5 * time.Second

// process is a child process that hcdemo started: healthcheck-server or
// healthcheck-proxy. Its methods must be called from one goroutine, except
// Exited.
type process struct {
	// Name is the binary's base name, for messages.
	Name string

	cmd      *exec.Cmd
	exited   chan struct{} // closed once the process has exited
	err      error         // how it exited; read only after exited is closed
	reported bool          // whether ExitError or ExitedBefore told of it
}

// startProcess starts the binary bin with args. Its stdout and stderr go
// to hcdemo's stderr, so that hcdemo's stdout holds only the demo's
// lines. flagName is hcdemo's flag that names bin, for the error when bin
// is missing.
func startProcess(bin, flagName string, args []string) (*process, error) {
	path, err := exec.LookPath(bin)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("binary %s not found: run `make demo`, "+
			"which builds it, or build it with `go build -o bin/ ./cmd/...` "+
			"and pass -%s PATH", bin, flagName)
	}
	if err != nil {
		return nil, fmt.Errorf("finding binary %s: %w", bin, err)
	}

	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// NOTE: the child gets its own process group so that Ctrl-C in the
	// terminal reaches only hcdemo, which then stops its children with
	// SIGTERM in the right order, as a load balancer's control plane
	// would.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	p := &process{
		Name:   filepath.Base(bin),
		cmd:    cmd,
		exited: make(chan struct{}),
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Exited returns a channel that is closed when the process exits; nil,
// which blocks for ever, when p is nil. It is safe for concurrent use.
func (p *process) Exited() <-chan struct{} {
	if p == nil {
		return nil
	}
	return p.exited
}

// ExitError describes how the process exited. It must have exited.
func (p *process) ExitError() error {
	p.reported = true
	if p.err != nil {
		return fmt.Errorf("%s exited: %w", p.Name, p.err)
	}
	return fmt.Errorf("%s exited", p.Name)
}

// ExitedBefore returns the error for a process that exited before it did
// what, e.g. "accepting connections". It must have exited.
func (p *process) ExitedBefore(what string) error {
	p.reported = true
	how := "exit status 0"
	if p.err != nil {
		how = p.err.Error()
	}
	return fmt.Errorf("%s exited before %s (%s); its log is above",
		p.Name, what, how)
}

// Stop sends the process SIGTERM and waits for it to exit, killing it
// after timeout. It returns nil when the process exited with status 0,
// and when it had exited before and ExitError or ExitedBefore told so
// already. Stop on a nil process does nothing.
func (p *process) Stop(timeout time.Duration) error {
	if p == nil {
		return nil
	}
	select {
	case <-p.exited:
		return p.stopError()
	default:
	}

	err := p.cmd.Process.Signal(syscall.SIGTERM)
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping %s: %w", p.Name, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
		return p.stopError()
	case <-t.C:
	}

	p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("%s still running %v after SIGTERM; killed it",
		p.Name, timeout)
}

// stopError is nil after an exit with status 0 or one already told of,
// else ExitError. The process must have exited.
func (p *process) stopError() error {
	if p.err == nil || p.reported {
		return nil
	}
	return p.ExitError()
}
