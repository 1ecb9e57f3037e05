package probe

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// setMark sets SO_MARK to mark on the socket behind c, before it
// connects. Without CAP_NET_ADMIN the kernel refuses with EPERM, and the
// error says which capability is missing.
//
// NOTE: Linux 5.17 and later also accept CAP_NET_RAW for SO_MARK; the
// message names CAP_NET_ADMIN, which every kernel accepts.
func setMark(c syscall.RawConn, mark int) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, mark)
	})
	if err != nil {
		return fmt.Errorf("setting SO_MARK %d: %w", uint32(mark), err)
	}
	if errors.Is(serr, unix.EPERM) {
		return fmt.Errorf("setting SO_MARK %d needs CAP_NET_ADMIN: %w",
			uint32(mark), serr)
	}
	if serr != nil {
		return fmt.Errorf("setting SO_MARK %d: %w", uint32(mark), serr)
	}
	return nil
}
