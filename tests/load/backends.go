package main

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// backendsSpec configures the backends role.
type backendsSpec struct {
	// TCP and HTTP are how many listeners of each kind to open; Ports is
	// how many ports each address gets.
	TCP, HTTP, Ports int
	// CloseFirst makes TCP backends close a connection as soon as they
	// accept it, instead of waiting for the prober to close it.
	CloseFirst bool
	// Control is the unix socket the role takes commands on.
	Control string
	// Result is where the role writes the listeners' addresses.
	Result string
}

// backendsResult lists the listeners the role opened.
type backendsResult struct {
	TCP  []netip.AddrPort
	HTTP []netip.AddrPort
}

// httpReadTimeout bounds how long an HTTP backend waits for a request.
const httpReadTimeout = 30 * time.Second

// backends serves loopback TCP and HTTP listeners until its stdin closes,
// and fails or restores TCP listeners on command: a line "fail 3 4" on the
// control socket closes listeners 3 and 4 (new connections are refused),
// "restore 3 4" opens them again. It answers each line with "ok".
type backends struct {
	spec backendsSpec
	tcp  *epollServer
	res  backendsResult
}

func runBackends() error {
	var bs backendsSpec
	if err := readJSONFile(os.Getenv(envSpec), &bs); err != nil {
		return err
	}
	srv, err := newEpollServer(bs.CloseFirst)
	if err != nil {
		return err
	}
	b := &backends{spec: bs, tcp: srv}
	if err := b.open(); err != nil {
		return err
	}
	go srv.run()
	ctl, err := net.Listen("unix", bs.Control)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	go b.serveControl(ctl)
	if err := writeJSON(bs.Result, b.res); err != nil {
		return err
	}
	// The coordinator holds our stdin; its end is ours.
	io.Copy(io.Discard, os.Stdin)
	ctl.Close()
	os.Remove(bs.Control)
	return nil
}

// raiseFileLimit lifts this process's limit on open files as far as it
// may, as a server's unit file would (LimitNOFILE): a backend holds each
// connection until the prober closes it, and a prober holds each socket
// until its probe ends, up to its timeout when a backend is slow.
func raiseFileLimit() {
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	want := unix.Rlimit{Cur: 1 << 20, Max: max(lim.Max, 1<<20)}
	if unix.Setrlimit(unix.RLIMIT_NOFILE, &want) != nil {
		lim.Cur = lim.Max
		unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	}
}

// addr returns the i-th address: 127.77.x.y with y in 1..250.
func addr(i int) netip.Addr {
	a := backendBase.As4()
	a[2] += byte(i / 250)
	a[3] = byte(i%250) + 1
	return netip.AddrFrom4(a)
}

// open starts every listener; TCP listeners take the first addresses,
// HTTP listeners the next ones. Ports are chosen by the kernel.
func (b *backends) open() error {
	ports := max(b.spec.Ports, 1)
	for i := range b.spec.TCP {
		ap, err := b.tcp.listen(netip.AddrPortFrom(addr(i/ports), 0))
		if err != nil {
			return fmt.Errorf("tcp listener %d: %w", i, err)
		}
		b.res.TCP = append(b.res.TCP, ap)
	}
	first := (b.spec.TCP + ports - 1) / ports
	for i := range b.spec.HTTP {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(addr(first+i), 0).String())
		if err != nil {
			return fmt.Errorf("http listener %d: %w", i, err)
		}
		b.res.HTTP = append(b.res.HTTP, netip.MustParseAddrPort(ln.Addr().String()))
		srv := &http.Server{
			Handler:           http.HandlerFunc(okHandler),
			ReadHeaderTimeout: httpReadTimeout,
			ErrorLog:          log.New(io.Discard, "", 0),
		}
		go srv.Serve(ln)
	}
	return nil
}

func okHandler(w http.ResponseWriter, _ *http.Request) {
	io.WriteString(w, "ok\n")
}

func (b *backends) serveControl(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go b.control(conn)
	}
}

func (b *backends) control(conn net.Conn) {
	defer conn.Close()
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		err := b.command(fields[0], fields[1:])
		reply := "ok\n"
		if err != nil {
			reply = "error " + err.Error() + "\n"
		}
		io.WriteString(conn, reply)
	}
}

func (b *backends) command(verb string, args []string) error {
	for _, a := range args {
		i, err := strconv.Atoi(a)
		if err != nil || i < 0 || i >= len(b.res.TCP) {
			return fmt.Errorf("bad listener %q", a)
		}
		switch verb {
		case "fail":
			b.tcp.fail(b.res.TCP[i])
		case "restore":
			if err := b.tcp.restore(b.res.TCP[i]); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown command %q", verb)
		}
	}
	return nil
}

// controlBackends sends one command line to the backends' control socket
// and waits for its answer.
func controlBackends(socket, verb string, listeners []int) error {
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return fmt.Errorf("backends control: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	parts := []string{verb}
	for _, l := range listeners {
		parts = append(parts, strconv.Itoa(l))
	}
	if _, err := io.WriteString(conn, strings.Join(parts, " ")+"\n"); err != nil {
		return err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("backends control: %w", err)
	}
	if reply != "ok\n" {
		return fmt.Errorf("backends control: %s", strings.TrimSpace(reply))
	}
	return nil
}
