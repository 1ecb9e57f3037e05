package probe

import "errors"

var (
	// ErrUnsupported is wrapped by the error New returns for a config
	// whose checker type this package cannot run.
	ErrUnsupported = errors.New("unsupported checker")

	// ErrMarkUnsupported is wrapped by the failure of a probe with a
	// socket mark on a system without SO_MARK (anything but Linux).
	ErrMarkUnsupported = errors.New("socket marks are not supported on this system")

	// ErrNoICMPSocket is wrapped by the failure of an ICMP probe that
	// could open neither an unprivileged ping socket nor a raw socket.
	ErrNoICMPSocket = errors.New("no ICMP socket available " +
		"(allow ping sockets with net.ipv4.ping_group_range, or grant CAP_NET_RAW)")
)
