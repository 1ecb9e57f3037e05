package tests

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// TestTwoClients checks that every client receives every batch, that a
// client hanging up abruptly does not disturb the others, and that a new
// client can connect afterwards.
func TestTwoClients(t *testing.T) {
	srv := startServer(t, serverOptions{NotifyInterval: 300 * time.Millisecond})
	up := startTCP(t, false)

	a := dial(t, srv.path)
	b := dial(t, srv.path)
	a.update(tcpConfig(1, up.addr), tcpConfig(2, refusedAddr(t)))
	for name, c := range map[string]*client{"a": a, "b": b} {
		first := c.waitFirstNotes(0, 1, 2)
		if first[1].Status.State != healthy || first[2].Status.State != unhealthy {
			t.Errorf("client %s: first states %v, %v; want healthy, unhealthy",
				name, first[1].Status.State, first[2].Status.State)
		}
	}

	// b hangs up in the middle of a line.
	b.sendRaw(`{"type":"request_st`)
	b.close()
	eventually(t, waitTimeout, "the server to drop the client", func() bool {
		return srv.stats.Clients.Load() == 1
	})

	mark := len(a.got)
	a.waitFor(waitTimeout, "batches after the other client left", func() bool {
		return len(a.batches(mark)) >= 2
	})

	c := dial(t, srv.path)
	if got, want := ids(c.status()), []uint64{1, 2}; !slices.Equal(got, want) {
		t.Errorf("new client: status lists %v, want %v", got, want)
	}
	c.waitFirstNotes(0, 1, 2)
	if got := srv.stats.Clients.Load(); got != 2 {
		t.Errorf("clients = %d, want 2", got)
	}
}

// TestHangUpWithPendingRequest hangs up right after a request_status,
// before the answer can be written, many times over, and checks that the
// server keeps serving.
func TestHangUpWithPendingRequest(t *testing.T) {
	srv := startServer(t, serverOptions{})
	up := startTCP(t, false)
	keep := dial(t, srv.path)
	keep.update(tcpConfig(1, up.addr))
	keep.waitNote(0, 1, healthy)

	// Not every hang-up beats the answer, so many more than the proxy's
	// supervisor tolerates (10 restarts in 10s): a crash per lost race
	// then stops the proxy.
	const hangUps = 50
	for range hangUps {
		conn, err := net.DialTimeout("unix", srv.path, waitTimeout)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conn.SetWriteDeadline(time.Now().Add(waitTimeout))
		if _, err := conn.Write([]byte(`{"type":"request_status"}` + "\n")); err != nil {
			t.Fatalf("write: %v", err)
		}
		conn.Close()
	}
	eventually(t, waitTimeout, "the server to drop the hung-up clients", func() bool {
		return srv.stats.Clients.Load() == 1
	})

	if got := ids(keep.status()); !slices.Equal(got, []uint64{1}) {
		t.Errorf("status lists %v, want [1]", got)
	}
	fresh := dial(t, srv.path)
	if got := ids(fresh.status()); !slices.Equal(got, []uint64{1}) {
		t.Errorf("new client: status lists %v, want [1]", got)
	}
}

// TestShutdownRequest sends a shutdown line to servers that allow it and
// to servers that do not.
func TestShutdownRequest(t *testing.T) {
	tests := []struct {
		name          string
		allow         bool
		withCallback  bool
		wantShutdown  bool
		wantErrSubstr string
	}{
		{
			name:          "not allowed",
			withCallback:  true,
			wantErrSubstr: "not allowed",
		},
		{
			name:          "allowed without a callback",
			allow:         true,
			wantErrSubstr: "not allowed",
		},
		{
			name:         "allowed",
			allow:        true,
			withCallback: true,
			wantShutdown: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requested := make(chan struct{})
			var once sync.Once
			opts := serverOptions{AllowShutdown: tt.allow}
			if tt.withCallback {
				opts.OnShutdown = func() { once.Do(func() { close(requested) }) }
			}
			srv := startServer(t, opts)
			c := dial(t, srv.path)

			from := len(c.got)
			c.send(&messages.Shutdown{})
			if tt.wantShutdown {
				select {
				case <-requested:
				case <-time.After(waitTimeout):
					t.Fatalf("OnShutdown not called within %v", waitTimeout)
				}
				return
			}

			e := reply[*messages.Error](c, from, "error reply")
			if !strings.Contains(e.Message, tt.wantErrSubstr) {
				t.Errorf("error message = %q, want it to contain %q", e.Message, tt.wantErrSubstr)
			}
			select {
			case <-requested:
				t.Errorf("OnShutdown called, want not")
			default:
			}
			// The server keeps serving this client and new ones.
			c.status()
			dial(t, srv.path).status()
		})
	}
}

// TestGracefulStop stops a server with connected clients and running
// checks: clients read EOF and the socket file is gone.
func TestGracefulStop(t *testing.T) {
	srv := startServer(t, serverOptions{})
	up := startTCP(t, false)
	a := dial(t, srv.path)
	b := dial(t, srv.path)
	a.update(tcpConfig(1, up.addr), tcpConfig(2, refusedAddr(t)))
	a.waitFirstNotes(0, 1, 2)

	srv.stop(t)
	a.waitEOF(waitTimeout)
	b.waitEOF(waitTimeout)
	if _, err := os.Lstat(srv.path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after stop: %v, want it gone", err)
	}
	if conn, err := net.DialTimeout("unix", srv.path, time.Second); err == nil {
		conn.Close()
		t.Errorf("dial after stop succeeded, want an error")
	}
}

// TestStopFlushesPendingNotifications stops a server while the notifier
// holds a notification for its batch delay, and checks that clients
// receive it before EOF, without the stop waiting for the delay.
func TestStopFlushesPendingNotifications(t *testing.T) {
	const batchDelay = 5 * time.Second
	srv := startServer(t, serverOptions{BatchDelay: batchDelay})
	up := startTCP(t, false)
	c := dial(t, srv.path)
	start := time.Now()
	c.update(tcpConfig(1, up.addr))
	isHealthy := func(st *messages.StatusResponse) bool {
		s, _ := statusOf(st, 1)
		return s.State == healthy
	}
	c.waitStatus(waitTimeout, "the check to turn healthy", isHealthy)
	if notes := c.notes(0); len(notes) > 0 && time.Since(start) < batchDelay {
		t.Fatalf("notification arrived before the batch delay: %+v", notes)
	}
	held := len(c.got)

	ctx, cancel := context.WithTimeout(context.Background(), batchDelay-time.Second)
	defer cancel()
	srv.stopped = true
	if err := srv.svc.Stop(ctx); err != nil {
		t.Fatalf("stop: %v (it must not wait for the batch delay)", err)
	}
	c.waitEOF(waitTimeout)
	n, ok := c.findNote(held, 1)
	if !ok {
		t.Fatalf("no notification of 1 before EOF; received:\n%s", c.dump(0))
	}
	if n.Status.State != healthy {
		t.Errorf("flushed notification: state %v, want healthy", n.Status.State)
	}
}
