package actors

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// maxSocketPath is the longest path a unix socket binds to: sun_path
// holds 108 bytes, the last of them a NUL.
const maxSocketPath = 107

// socketListener is the proxy's listener. Its socket file is bound
// under a private name and linked into place, so the library's unlink
// on close would miss it: Close removes the file itself. Close is safe
// to call more than once and concurrently.
type socketListener struct {
	*net.UnixListener
	path string
	once sync.Once
	err  error
}

// Close stops listening and removes the socket file.
func (l *socketListener) Close() error {
	l.once.Do(func() {
		l.err = l.UnixListener.Close()
		os.Remove(l.path)
	})
	return l.err
}

// listenUnix listens on path with the given mode and group, replacing a
// stale socket file but never one a live server answers on.
//
// The socket never exists at path with other permissions than mode and
// group: it is bound in a private directory (0700) beside path, given
// its mode and group there, and then linked to path. The link, unlike a
// rename, fails when something took path in the meantime.
func listenUnix(path string, mode os.FileMode, group string) (*socketListener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("listen %s: path too long: %d bytes, at most %d",
			path, len(path), maxSocketPath)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".hc")
	if err != nil {
		return nil, fmt.Errorf("listen %s: making a private directory: %w", path, err)
	}
	defer os.RemoveAll(dir)
	private := filepath.Join(dir, "s")
	if len(private) > maxSocketPath {
		return nil, fmt.Errorf("listen %s: path too long: %d bytes with the "+
			"private directory it is bound in, at most %d",
			path, len(private), maxSocketPath)
	}

	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: private, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := setOwnership(private, mode, group); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Link(private, path); err != nil {
		ln.Close()
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("listen %s: another server is using it", path)
		}
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return &socketListener{UnixListener: ln, path: path}, nil
}

// removeStale removes a socket file at path that no server answers on;
// a live one, or a file that is no socket, is an error.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil // Nothing there, or listening will say what is wrong.
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("listen %s: exists and is not a socket", path)
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("listen %s: another server is using it", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("listen %s: removing stale socket: %w", path, err)
	}
	return nil
}

// setOwnership gives path its mode and, if group is set, its group.
func setOwnership(path string, mode os.FileMode, group string) error {
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("setting mode %v: %w", mode, err)
	}
	if group != "" {
		return chownGroup(path, group)
	}
	return nil
}

// chownGroup gives the named group (or numeric group ID) ownership of
// path.
func chownGroup(path, group string) error {
	gid, err := strconv.Atoi(group)
	if err != nil {
		g, lerr := user.LookupGroup(group)
		if lerr != nil {
			return fmt.Errorf("-socket_group: %w", lerr)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.Chown(path, -1, gid); err != nil {
		return fmt.Errorf("-socket_group: %w", err)
	}
	return nil
}
