package bridge

import (
	"errors"
	"fmt"
	"net/rpc"
	"strings"
)

var (
	// ErrUnsupported is wrapped by ToConfig for a Seesaw config that is
	// valid but asks for something this server cannot run, such as an HTTP
	// check accepting any status code or a DNS class other than IN. The
	// error names the field and the reason.
	ErrUnsupported = errors.New("not supported yet")

	// ErrRegistration is returned by every EngineClient call when another
	// package registered Seesaw's gob checker names for its own types
	// before this package could, so that replies would not decode into
	// this package's types. It is permanent for the life of the process.
	ErrRegistration = errors.New("gob names of Seesaw's checkers are taken")

	// ErrDial is wrapped by an EngineClient call that could not connect
	// to the Engine's socket, e.g. because it does not exist.
	ErrDial = errors.New("cannot reach engine")

	// ErrAccess is wrapped by an EngineError whose text says the Engine
	// refused the caller's context ("insufficient access").
	ErrAccess = errors.New("engine denied access")

	// ErrContext is wrapped by an EngineError whose text says the Engine
	// received no context ("context is nil").
	ErrContext = errors.New("engine received no context")

	// ErrArgs is wrapped by an EngineError whose text says the Engine
	// received no arguments ("args is nil").
	ErrArgs = errors.New("engine received no arguments")

	// ErrUnknownMethod is wrapped by an EngineError whose text says the
	// server does not know the service or method, which means the socket
	// is not a Seesaw Engine's.
	ErrUnknownMethod = errors.New("engine does not serve the method")

	// ErrEngine is wrapped by an EngineError whose text matches none of
	// the known texts.
	ErrEngine = errors.New("engine returned an error")
)

// EngineError is an error the Engine returned from an RPC. net/rpc carries
// it as plain text; Err is the sentinel that text stands for.
type EngineError struct {
	// Method is the RPC, e.g. "SeesawEngine.Healthchecks".
	Method string
	// Text is the error text the Engine sent.
	Text string
	// Err is ErrAccess, ErrContext, ErrArgs, ErrUnknownMethod or ErrEngine.
	Err error
}

// Error returns the method and the Engine's own text.
func (e *EngineError) Error() string {
	return fmt.Sprintf("engine %s: %s", e.Method, e.Text)
}

// Unwrap returns the sentinel and the rpc.ServerError the text came in,
// so both errors.Is(err, ErrAccess) and errors.As into an rpc.ServerError
// work.
func (e *EngineError) Unwrap() []error {
	return []error{e.Err, rpc.ServerError(e.Text)}
}

// engineTexts maps the start of an error text the Engine (or net/rpc's
// server) sends to the sentinel it stands for. It is the one place where
// the Engine's texts are known; the first match wins.
var engineTexts = []struct {
	prefix string
	err    error
}{
	// Seesaw's SeesawEngine methods; access errors may carry a suffix.
	{"insufficient access", ErrAccess},
	{"context is nil", ErrContext},
	{"args is nil", ErrArgs},
	// net/rpc's server.
	{"rpc: can't find service", ErrUnknownMethod},
	{"rpc: can't find method", ErrUnknownMethod},
	{"rpc: service/method request ill-formed", ErrUnknownMethod},
}

// newEngineError maps the text of an error the Engine returned from method
// to an EngineError.
func newEngineError(method, text string) *EngineError {
	e := &EngineError{Method: method, Text: text, Err: ErrEngine}
	for _, t := range engineTexts {
		if strings.HasPrefix(text, t.prefix) {
			e.Err = t.err
			break
		}
	}
	return e
}
