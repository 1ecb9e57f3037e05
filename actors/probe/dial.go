package probe

import (
	"net"
	"syscall"
)

// newDialer returns the dialer of a probe whose socket carries mark, or no
// mark when mark is 0. In DSR and TUN modes the probe is addressed to the
// VIP, and the kernel's IPVS forwards it to the backend by its mark, as
// Seesaw's Engine arranges. The dialer sets no timeout of its own: every
// probe dials under a context with its deadline.
func newDialer(mark int) net.Dialer {
	var d net.Dialer
	if mark != 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return setMark(c, mark)
		}
	}
	return d
}
