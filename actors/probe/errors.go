package probe

import "errors"

// ErrUnsupported is wrapped by the error New returns for a config whose
// checker type this package cannot run.
var ErrUnsupported = errors.New("unsupported checker")
