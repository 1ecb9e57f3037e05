package enginesim

import "errors"

var (
	// ErrInvalidCheck is wrapped by every CheckError: a Check the Engine
	// would not accept or that cannot be described on the wire.
	ErrInvalidCheck = errors.New("invalid check")

	// ErrFileFormat is wrapped by LoadFile's errors about the file as a
	// whole: an unknown extension, a syntax error, a missing or unknown
	// top-level field.
	ErrFileFormat = errors.New("invalid checks file")

	// ErrMarksExhausted is wrapped by SetChecks when its DSR and TUN
	// checks need more marks than the Engine's pool of MarkPoolSize
	// holds.
	ErrMarksExhausted = errors.New("mark pool exhausted")

	// ErrListening is returned by Listen when the Server already listens.
	ErrListening = errors.New("already listening")

	// ErrNotSocket is wrapped by Listen when its path exists and is not a
	// unix socket, which Listen refuses to remove.
	ErrNotSocket = errors.New("path exists and is not a socket")

	// ErrInUse is wrapped by Listen when a process accepts connections on
	// its path: the socket is not stale, so Listen leaves it alone.
	ErrInUse = errors.New("socket in use")
)

// The texts the Engine's SeesawEngine service sends; clients match them.
var (
	// errNilArgs is the Engine's reply to HealthState without arguments.
	errNilArgs = errors.New("args is nil")

	// errNilContext is the Engine's reply to a call without a context.
	errNilContext = errors.New("context is nil")

	// errAccess is the Engine's reply to a context that is not trusted.
	errAccess = errors.New("insufficient access")

	// errAbandoned ends a hanging call whose connection has gone; no
	// client ever reads it.
	errAbandoned = errors.New("call abandoned while hanging")
)
