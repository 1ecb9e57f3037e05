package tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
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

// Foreign user and group IDs of the credential tests: no account needs
// to exist for them.
const (
	allowedUID = 4242
	otherUID   = 4343
	socketGID  = 4545
	otherGID   = 4747
)

// needRoot skips a test that changes a thread's credentials.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to connect as another user")
	}
}

// openToOthers lets every user reach the socket at path through its
// directory, so that only the socket's own mode, group and the server
// decide who may connect.
func openToOthers(t *testing.T, path string) {
	t.Helper()
	if err := os.Chmod(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
}

// dialAs connects to the socket at path from a thread whose effective
// user and group IDs are uid and gid, and returns the first line the
// server sends, or the error of connecting or reading.
func dialAs(t *testing.T, path string, uid, gid int) (string, error) {
	t.Helper()
	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// NOTE: raw setresuid and setresgid change the calling thread's
		// credentials alone (syscall.Setuid changes every thread's), and
		// the kernel takes a connection's peer credentials from the
		// connecting thread. The thread is restored before it is
		// unlocked; if it cannot be, it ends with this goroutine.
		runtime.LockOSThread()
		if err := setThreadIDs(uid, gid); err != nil {
			done <- result{err: fmt.Errorf("becoming %d:%d: %w", uid, gid, err)}
			return
		}
		line, err := firstLine(path)
		if setThreadIDs(0, 0) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{line, err}
	}()
	select {
	case r := <-done:
		return r.line, r.err
	case <-time.After(2 * waitTimeout):
		t.Fatalf("connecting as %d:%d did not end within %v", uid, gid, 2*waitTimeout)
		return "", nil
	}
}

// setThreadIDs sets the calling thread's effective group and user IDs;
// back to root, the user goes first.
func setThreadIDs(uid, gid int) error {
	keep := ^uintptr(0) // -1: leave this ID as it is
	calls := []struct {
		nr, id uintptr
	}{{syscall.SYS_SETRESGID, uintptr(gid)}, {syscall.SYS_SETRESUID, uintptr(uid)}}
	if uid == 0 {
		calls[0], calls[1] = calls[1], calls[0]
	}
	for _, c := range calls {
		if _, _, errno := syscall.RawSyscall(c.nr, keep, c.id, keep); errno != 0 {
			return errno
		}
	}
	return nil
}

// firstLine dials path and reads one line.
func firstLine(path string) (string, error) {
	conn, err := net.DialTimeout("unix", path, waitTimeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(waitTimeout))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSuffix(line, "\n"), err
}

// TestAllowUID connects as users the server lets in and as one it does
// not: the refused one is told why, counted and logged with its
// credentials; every connection is logged with the peer's.
func TestAllowUID(t *testing.T) {
	needRoot(t)
	logs := &logBuffer{}
	srv := startServer(t, serverOptions{TuneProxy: func(c *actors.ProxyConfig) {
		c.Mode = 0o666
		c.AllowUIDs = []uint32{allowedUID}
		c.Logger = zerolog.New(logs)
	}})
	openToOthers(t, srv.path)
	pid := fmt.Sprintf(`"peer_pid":%d`, os.Getpid())

	tests := []struct {
		name      string
		uid       int
		wantLine  string
		wantLog   string
		wantCount uint64 // refusals so far
	}{
		{"an allowed user", allowedUID, `"type":"ready"`, "client_connected", 0},
		{"another user", otherUID,
			fmt.Sprintf("user %d may not connect (-allow_uid)", otherUID),
			"client_refused", 1},
		{"the server's own user", os.Getuid(), `"type":"ready"`,
			"client_connected", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, err := dialAs(t, srv.path, tt.uid, os.Getgid())
			if err != nil {
				t.Fatalf("connecting as %d: %v", tt.uid, err)
			}
			if !strings.Contains(line, tt.wantLine) {
				t.Errorf("first line = %s, want it to contain %q",
					line, tt.wantLine)
			}
			if got := srv.stats.Refused.Load(); got != tt.wantCount {
				t.Errorf("refused = %d, want %d", got, tt.wantCount)
			}
			uid := fmt.Sprintf(`"peer_uid":%d`, tt.uid)
			eventually(t, waitTimeout, "the peer's log line", func() bool {
				return len(logs.lines(tt.wantLog, pid, uid)) > 0
			})
		})
	}
}

// TestSocketGroup gives the socket to a group, by ID and by name: the
// group's members may connect, other users may not.
func TestSocketGroup(t *testing.T) {
	needRoot(t)
	type socketGroup struct {
		name, group string
		gid         int
	}
	groups := []socketGroup{{"by ID", strconv.Itoa(socketGID), socketGID}}
	if g, err := user.LookupGroupId("65534"); err == nil {
		groups = append(groups, socketGroup{"by name", g.Name, 65534})
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			srv := startServer(t, serverOptions{TuneProxy: func(c *actors.ProxyConfig) {
				c.Mode = 0o660
				c.Group = g.group
			}})
			openToOthers(t, srv.path)
			gid := g.gid
			fi, err := os.Lstat(srv.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o660 {
				t.Errorf("socket mode = %v, want 0660", got)
			}
			if got := fi.Sys().(*syscall.Stat_t).Gid; int(got) != gid {
				t.Errorf("socket group = %d, want %d", got, gid)
			}

			line, err := dialAs(t, srv.path, otherUID, gid)
			if err != nil || !strings.Contains(line, `"type":"ready"`) {
				t.Errorf("a member of the group: %q, %v; want a ready line",
					line, err)
			}
			_, err = dialAs(t, srv.path, otherUID, otherGID)
			if !errors.Is(err, syscall.EACCES) {
				t.Errorf("a user outside the group: %v, "+
					"want permission denied", err)
			}
		})
	}
}
