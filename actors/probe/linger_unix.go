//go:build unix

package probe

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// setLingerZero makes closing the socket behind c send a reset and drop
// the socket at once, with no TIME_WAIT.
func setLingerZero(c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER,
			&unix.Linger{Onoff: 1, Linger: 0})
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("setting SO_LINGER 0: %w", err)
	}
	return nil
}
