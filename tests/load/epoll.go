package main

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// listenBacklog is each TCP backend's accept queue.
const listenBacklog = 4096

// epollServer serves the TCP backends from one epoll loop, with no
// goroutine per connection: a backend must cost far less than the probes
// it answers, or the harness would measure the backends. It accepts every
// connection and, by default, closes it once the peer has closed its side,
// as a server does when a client connects and leaves: the prober closes
// first, so TIME_WAIT lands on the prober's side, as in production.
//
// Its loop owns the listeners; fail and restore run on the loop.
type epollServer struct {
	ep         int
	closeFirst bool
	listeners  map[int]netip.AddrPort // fd to address, the loop's
	byAddr     map[netip.AddrPort]int
	cmds       chan func()
}

func newEpollServer(closeFirst bool) (*epollServer, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return &epollServer{
		ep:         ep,
		closeFirst: closeFirst,
		listeners:  make(map[int]netip.AddrPort),
		byAddr:     make(map[netip.AddrPort]int),
		cmds:       make(chan func()),
	}, nil
}

// listen opens a listener on ap (port 0: one the kernel picks) and returns
// its address. Before run, any goroutine may call it; after, only the
// loop.
func (s *epollServer) listen(ap netip.AddrPort) (netip.AddrPort, error) {
	fd, err := unix.Socket(unix.AF_INET,
		unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return ap, err
	}
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	err = errors.Join(
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1),
		unix.Bind(fd, sa),
		unix.Listen(fd, listenBacklog))
	if err != nil {
		unix.Close(fd)
		return ap, err
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return ap, err
	}
	in := got.(*unix.SockaddrInet4)
	ap = netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port))
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(s.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return ap, err
	}
	s.listeners[fd] = ap
	s.byAddr[ap] = fd
	return ap, nil
}

// fail closes the listener on ap: new connections are refused.
func (s *epollServer) fail(ap netip.AddrPort) {
	s.onLoop(func() error {
		if fd, ok := s.byAddr[ap]; ok {
			delete(s.byAddr, ap)
			delete(s.listeners, fd)
			unix.Close(fd)
		}
		return nil
	})
}

// restore opens the listener on ap again.
func (s *epollServer) restore(ap netip.AddrPort) error {
	return s.onLoop(func() error {
		if _, ok := s.byAddr[ap]; ok {
			return nil
		}
		_, err := s.listen(ap)
		return err
	})
}

// onLoop runs f on the loop and returns its error.
func (s *epollServer) onLoop(f func() error) error {
	done := make(chan error, 1)
	s.cmds <- func() { done <- f() }
	return <-done
}

// run is the loop; it never returns. It wakes at least every 20ms to run
// commands.
func (s *epollServer) run() {
	events := make([]unix.EpollEvent, 256)
	buf := make([]byte, 512)
	for {
		n, err := unix.EpollWait(s.ep, events, 20)
		if err != nil && !errors.Is(err, unix.EINTR) {
			panic(fmt.Errorf("epoll_wait: %w", err))
		}
		for _, ev := range events[:max(n, 0)] {
			fd := int(ev.Fd)
			if _, ok := s.listeners[fd]; ok {
				s.accept(fd)
				continue
			}
			s.serve(fd, buf)
		}
		for {
			select {
			case f := <-s.cmds:
				f()
				continue
			default:
			}
			break
		}
	}
}

// accept accepts every pending connection of listener fd.
func (s *epollServer) accept(fd int) {
	for {
		c, _, err := unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN, or out of descriptors: the next wake retries
		}
		if s.closeFirst {
			unix.Close(c)
			continue
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c)}
		if unix.EpollCtl(s.ep, unix.EPOLL_CTL_ADD, c, &ev) != nil {
			unix.Close(c)
		}
	}
}

// serve reads what a connection sent and closes it once the peer has
// closed (or reset) it.
func (s *epollServer) serve(fd int, buf []byte) {
	for {
		n, err := unix.Read(fd, buf)
		switch {
		case n > 0:
			continue
		case errors.Is(err, unix.EAGAIN):
			return
		case errors.Is(err, unix.EINTR):
			continue
		}
		unix.Close(fd)
		return
	}
}
