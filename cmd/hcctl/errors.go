package main

import (
	"errors"
	"fmt"
)

var (
	// errUnhealthy is health's answer when the supervisor reports a
	// status other than ok; health has printed the report, so hcctl
	// exits with status 1 and says nothing more.
	errUnhealthy = errors.New("supervisor is not ok")

	// errNoCheck reports that the server runs no check of the ID asked
	// for.
	errNoCheck = errors.New("no check")

	// errServerClosed reports that the server closed the socket
	// connection watch was reading.
	errServerClosed = errors.New("server closed the connection")
)

// usageError is a bad invocation: hcctl prints msg with a hint and exits
// with status 2. An empty msg means the flag package has already said
// what is wrong.
type usageError struct {
	msg string
}

// Error returns the message, marked as a usage error.
func (e *usageError) Error() string { return "usage: " + e.msg }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}
