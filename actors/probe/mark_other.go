//go:build !linux

package probe

import (
	"fmt"
	"syscall"
)

// setMark fails: socket marks exist only on Linux.
func setMark(_ syscall.RawConn, mark int) error {
	return fmt.Errorf("setting SO_MARK %d: %w", uint32(mark), ErrMarkUnsupported)
}
