//go:build linux

package tests

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// markUnavailable says why this process cannot set socket marks, or
// returns nil if it can: it sets one, as a probe does, on a UDP socket
// of its own. Without CAP_NET_ADMIN (or, on Linux 5.17 and later,
// CAP_NET_RAW) the kernel refuses.
func markUnavailable() error {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("opening a UDP socket: %w", err)
	}
	defer c.Close()
	rc, err := c.(*net.UDPConn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, 1)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("setting SO_MARK needs CAP_NET_ADMIN: %w", err)
	}
	return nil
}
