package faultinject

import (
	"bufio"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// fakeTimeout bounds every wait of the fake server; it is only reached
// when a test fails.
const fakeTimeout = 10 * time.Second

// fakeServer is a socket server that greets each connection with a ready
// line, then runs the next of its scripts on it, and counts the
// inject_fault requests it reads.
type fakeServer struct {
	path    string
	ln      net.Listener
	scripts []func(*fakeServer, net.Conn, *bufio.Reader)
	conns   atomic.Int64
	injects atomic.Int64
	wg      sync.WaitGroup
}

func startFake(t *testing.T, scripts ...func(*fakeServer, net.Conn, *bufio.Reader),
) *fakeServer {
	t.Helper()
	// t.TempDir() can exceed the 108-byte limit of a socket path.
	dir, err := os.MkdirTemp("", "fi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &fakeServer{path: filepath.Join(dir, "s.sock"), scripts: scripts}
	s.ln, err = net.Listen("unix", s.path)
	if err != nil {
		t.Fatal(err)
	}
	s.wg.Go(s.accept)
	t.Cleanup(s.stop)
	return s
}

func (s *fakeServer) accept() {
	for i := 0; ; i++ {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		script := closeConn
		if i < len(s.scripts) {
			script = s.scripts[i]
		}
		s.wg.Go(func() {
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(fakeTimeout))
			line, _ := messages.EncodeLine(&messages.Ready{})
			if _, err := conn.Write(line); err != nil {
				return
			}
			script(s, conn, bufio.NewReader(conn))
		})
	}
}

// stop closes the listener and waits for every connection's script.
func (s *fakeServer) stop() {
	s.ln.Close()
	s.wg.Wait()
}

// read reads one request, counting it if it is an inject_fault.
func (s *fakeServer) read(r *bufio.Reader) bool {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return false
	}
	if msg, err := messages.DecodeLine(line); err == nil {
		if _, ok := msg.(*messages.InjectFault); ok {
			s.injects.Add(1)
		}
	}
	return true
}

// closeConn closes the connection at once, as a server dropping a
// client does.
func closeConn(*fakeServer, net.Conn, *bufio.Reader) {}

// ack answers every request with an ack.
func ack(s *fakeServer, conn net.Conn, r *bufio.Reader) {
	for s.read(r) {
		line, _ := messages.EncodeLine(&messages.Ack{Message: "ok"})
		if _, err := conn.Write(line); err != nil {
			return
		}
	}
}

// silent reads requests and never answers, until the client leaves.
func silent(s *fakeServer, _ net.Conn, r *bufio.Reader) {
	for s.read(r) {
	}
}

// readThenClose reads one request and closes the connection unanswered.
func readThenClose(s *fakeServer, _ net.Conn, r *bufio.Reader) {
	s.read(r)
}

func TestInjectIsSentOnce(t *testing.T) {
	tests := []struct {
		name    string
		scripts []func(*fakeServer, net.Conn, *bufio.Reader)
		// dropped says the first connection is closed by the server
		// before the request: the client must send it on a new one.
		dropped   bool
		wantErr   bool
		wantConns int64
	}{
		{
			name:      "answered",
			scripts:   []func(*fakeServer, net.Conn, *bufio.Reader){ack},
			wantConns: 1,
		},
		{
			name: "answer times out",
			// A second connection would take a resent request.
			scripts:   []func(*fakeServer, net.Conn, *bufio.Reader){silent, ack},
			wantErr:   true,
			wantConns: 1,
		},
		{
			name:      "closed after the request",
			scripts:   []func(*fakeServer, net.Conn, *bufio.Reader){readThenClose, ack},
			wantErr:   true,
			wantConns: 1,
		},
		{
			name:      "idle connection dropped",
			scripts:   []func(*fakeServer, net.Conn, *bufio.Reader){closeConn, ack},
			dropped:   true,
			wantConns: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startFake(t, tt.scripts...)
			c, err := Dial(s.path)
			if err != nil {
				t.Fatal(err)
			}
			c.timeout = 300 * time.Millisecond
			if tt.dropped {
				waitClosed(t, c)
			}

			_, err = c.Inject(1, messages.FaultPanic, 3)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("Inject error = %v, want error %t", err, tt.wantErr)
			}
			c.Close()
			s.stop()
			if got := s.injects.Load(); got != 1 {
				t.Errorf("server read %d inject requests, want 1", got)
			}
			if got := s.conns.Load(); got != tt.wantConns {
				t.Errorf("client connected %d times, want %d", got, tt.wantConns)
			}
		})
	}
}

// waitClosed waits until the server has closed c's connection; the ready
// line was read by Dial, so the next read ends the connection.
func waitClosed(t *testing.T, c *Client) {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(fakeTimeout))
	if _, err := c.r.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on a dropped connection: %v, want its end", err)
	}
}
