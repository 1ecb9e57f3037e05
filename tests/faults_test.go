package tests

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lbhealth/hcsupervisor/actors"
)

// idleEdge is an edge actor that ignores everything; the test stops it
// from outside to play an edge that died.
type idleEdge struct {
	started chan<- *actor.PID
}

func (e *idleEdge) Receive(c actor.Context) {
	if _, ok := c.Message().(*actor.Started); ok {
		e.started <- c.Self()
	}
}

// TestStopAfterChildDied stops a server one of whose root's children
// has already terminated, as a child does when its supervisor gives up on
// it: the stop must still complete.
func TestStopAfterChildDied(t *testing.T) {
	tests := []struct {
		name string
		// victim returns the child to stop.
		victim func(srv *server, edge *actor.PID) *actor.PID
	}{
		{
			name:   "edge",
			victim: func(_ *server, edge *actor.PID) *actor.PID { return edge },
		},
		{
			name: "manager",
			victim: func(srv *server, _ *actor.PID) *actor.PID {
				return srv.svc.Manager()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started := make(chan *actor.PID, 1)
			edge := actors.Edge{
				Name: "idle",
				Props: func(*actor.PID) *actor.Props {
					return actor.PropsFromProducer(func() actor.Actor {
						return &idleEdge{started: started}
					})
				},
			}
			srv := startServer(t, serverOptions{Edges: []actors.Edge{edge}})
			var pid *actor.PID
			select {
			case pid = <-started:
			case <-time.After(waitTimeout):
				t.Fatalf("edge not started within %v", waitTimeout)
			}

			root := srv.svc.System().Root
			if err := root.StopFuture(tt.victim(srv, pid)).Wait(); err != nil {
				t.Fatalf("stopping the %s: %v", tt.name, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			srv.stopped = true
			if err := srv.svc.Stop(ctx); err != nil {
				t.Fatalf("stop after the %s died: %v", tt.name, err)
			}
		})
	}
}

// TestStopTwice stops a server twice: the second stop has nothing left to
// do and must say so without harm.
func TestStopTwice(t *testing.T) {
	srv := startServer(t, serverOptions{})
	srv.stop(t)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("second Stop panicked: %v", r)
		}
	}()
	if err := srv.svc.Stop(ctx); err != nil {
		t.Logf("second Stop: %v", err)
	}
}

// TestListenProxyPath opens the proxy's socket where a stale socket file,
// a live server or a regular file already is.
func TestListenProxyPath(t *testing.T) {
	tests := []struct {
		name string
		// prepare returns the path to listen on.
		prepare func(t *testing.T) string
		wantErr string // empty: the listen succeeds
	}{
		{
			name:    "nothing there",
			prepare: socketPath,
		},
		{
			name:    "stale socket",
			prepare: staleSocket,
		},
		{
			name: "live server",
			prepare: func(t *testing.T) string {
				return startServer(t, serverOptions{}).path
			},
			wantErr: "another server is using it",
		},
		{
			name: "regular file",
			prepare: func(t *testing.T) string {
				path := socketPath(t)
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			},
			wantErr: "not a socket",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.prepare(t)
			edge, err := actors.ListenProxy(actors.ProxyConfig{
				Path:   path,
				Logger: newLogger(t),
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ListenProxy: error %v, want one containing %q", err, tt.wantErr)
				}
				if err == nil {
					edge.Close()
				}
				return
			}
			if err != nil {
				t.Fatalf("ListenProxy: %v", err)
			}
			defer edge.Close()
			fi, err := os.Lstat(path)
			if err != nil || fi.Mode()&os.ModeSocket == 0 {
				t.Fatalf("socket file: %v, %v", fi, err)
			}
			if got := fi.Mode().Perm(); got != actors.DefaultSocketMode {
				t.Errorf("socket mode = %v, want %v", got, actors.DefaultSocketMode)
			}
		})
	}
}

// socketPath returns a short socket path in a fresh directory.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "hc.sock")
}

// staleSocket returns the path of a socket file that nothing listens on,
// as a crashed server leaves behind.
func staleSocket(t *testing.T) string {
	t.Helper()
	path := socketPath(t)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	return path
}
