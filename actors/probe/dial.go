package probe

import (
	"net"
	"strings"
	"syscall"
)

// newDialer returns the dialer of a probe whose socket carries mark, or no
// mark when mark is 0, and whose TCP connections close with a reset when
// resetClose is set (see Options). In DSR and TUN modes the probe is
// addressed to the VIP, and the kernel's IPVS forwards it to the backend
// by its mark, as Seesaw's Engine arranges. The dialer sets no timeout of
// its own: every probe dials under a context with its deadline.
func newDialer(mark int, resetClose bool) net.Dialer {
	var d net.Dialer
	if mark == 0 && !resetClose {
		return d
	}
	d.Control = func(network, _ string, c syscall.RawConn) error {
		if mark != 0 {
			if err := setMark(c, mark); err != nil {
				return err
			}
		}
		if resetClose && strings.HasPrefix(network, "tcp") {
			return setLingerZero(c)
		}
		return nil
	}
	return d
}
