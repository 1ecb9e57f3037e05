//go:build !unix

package probe

import (
	"errors"
	"syscall"
)

// setLingerZero fails: the reset close is implemented on unix only.
func setLingerZero(syscall.RawConn) error {
	return errors.New("setting SO_LINGER 0: not supported on this system")
}
