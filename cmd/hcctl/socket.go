package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// dialSocket connects to the server's JSON-lines socket within timeout.
// faults says whether the caller needs fault injection, for the hint
// when nobody listens.
func dialSocket(socket string, timeout time.Duration,
	faults bool) (net.Conn, error) {
	conn, err := net.DialTimeout("unix", socket, timeout)
	if err != nil {
		return nil, explainSocket(socket, err, faults)
	}
	return conn, nil
}

// explainSocket turns a failed connection to socket into an error that
// says what to check; other errors come back as they are.
func explainSocket(socket string, err error, faults bool) error {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return err
	}
	flags := "-proxy_socket " + socket
	if faults {
		flags += " -enable_fault_injection"
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("no server at socket %s (is healthcheck-server "+
			"running with %s?): %w", socket, flags, op)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("not allowed to use socket %s (its mode is the "+
			"server's -socket_mode; run hcctl as the socket's owner): %w",
			socket, op)
	}
	return fmt.Errorf("cannot connect to socket %s: %w", socket, op)
}
