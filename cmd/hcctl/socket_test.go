package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// peer is the server's end of a connection to a fake socket.
type peer struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// send writes msg as a protocol line.
func (p *peer) send(msg any) {
	line, err := messages.EncodeLine(msg)
	if err != nil {
		p.t.Errorf("encode %T: %v", msg, err)
		return
	}
	p.sendRaw(string(line))
}

// sendRaw writes line as it is.
func (p *peer) sendRaw(line string) {
	if _, err := io.WriteString(p.conn, line); err != nil {
		p.t.Errorf("write: %v", err)
	}
}

// receive reads and decodes the client's next line; nil on error.
func (p *peer) receive() any {
	line, err := p.r.ReadBytes('\n')
	if err != nil {
		p.t.Errorf("read the client's line: %v", err)
		return nil
	}
	msg, err := messages.DecodeLine(line)
	if err != nil {
		p.t.Errorf("decode the client's line %q: %v", line, err)
	}
	return msg
}

// waitClose reads until the client closes the connection.
func (p *peer) waitClose() {
	io.Copy(io.Discard, p.r)
}

// socketDir returns a new short directory for sockets (a socket's path
// is limited to about 100 bytes), removed when the test ends.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hcctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// fakeSocket listens on a unix socket and runs serve on the first
// connection, then closes it. The test waits for serve at its end.
func fakeSocket(t *testing.T, serve func(*peer)) string {
	t.Helper()
	path := filepath.Join(socketDir(t), "hc.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(waitBound))
		serve(&peer{t: t, conn: conn, r: bufio.NewReader(conn)})
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return path
}

// refusedSocket returns the path of a socket file nobody listens on.
func refusedSocket(t *testing.T) string {
	t.Helper()
	path := filepath.Join(socketDir(t), "hc.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	return path
}

// TestNoSocket checks the error of each socket command when the socket
// is missing or nobody listens on it.
func TestNoSocket(t *testing.T) {
	args := map[string][]string{
		"watch":  {"watch"},
		"inject": {"inject", "-id", "1", "-fault", "error"},
		"clear":  {"clear"},
	}
	sockets := map[string]func(*testing.T) string{
		"missing": func(t *testing.T) string {
			return filepath.Join(socketDir(t), "hc.sock")
		},
		"refused": refusedSocket,
	}
	for cmd, a := range args {
		for kind, socket := range sockets {
			t.Run(cmd+"_"+kind, func(t *testing.T) {
				path := socket(t)
				got := runTest(t, append(a, "-socket", path))
				checkGolden(t, "no_socket_"+cmd+"_"+kind, got.String(),
					path, "SOCKET")
			})
		}
	}
}
