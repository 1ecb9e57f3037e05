package actors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// shortDir returns a fresh directory whose socket paths stay short.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hcs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestListenUnixModeAndGroup(t *testing.T) {
	tests := []struct {
		name  string
		mode  os.FileMode
		group string // a group ID; "" keeps the server's
		root  bool   // giving a foreign group needs root
	}{
		{name: "default mode", mode: DefaultSocketMode},
		{name: "group may connect", mode: 0o660, group: "65534", root: true},
		{name: "anyone may connect", mode: 0o666},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root to give the socket a foreign group")
			}
			dir := shortDir(t)
			path := filepath.Join(dir, "hc.sock")
			ln, err := listenUnix(path, tt.mode, tt.group)
			if err != nil {
				t.Fatalf("listenUnix: %v", err)
			}
			defer ln.Close()

			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tt.mode {
				t.Errorf("mode = %v, want %v", got, tt.mode)
			}
			wantGID := os.Getegid()
			if tt.group != "" {
				wantGID, _ = strconv.Atoi(tt.group)
			}
			if got := fi.Sys().(*syscall.Stat_t).Gid; int(got) != wantGID {
				t.Errorf("group = %d, want %d", got, wantGID)
			}
			if got := dirNames(t, dir); len(got) != 1 || got[0] != "hc.sock" {
				t.Errorf("directory holds %q, want only hc.sock", got)
			}

			ln.Close()
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("socket file after Close: %v, want it gone", err)
			}
		})
	}
}

func TestListenUnixErrors(t *testing.T) {
	// deep is a directory where a socket path fits, but not the private
	// directory's socket.
	dir := shortDir(t)
	deep := filepath.Join(dir, strings.Repeat("d", maxSocketPath-len(dir)-4))
	if err := os.Mkdir(deep, 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		group   string
		wantErr string
	}{
		{"path too long", filepath.Join(dir, strings.Repeat("x", maxSocketPath)),
			"", "path too long: 1"},
		{"path too long with the private directory", filepath.Join(deep, "s"),
			"", "with the private directory"},
		{"unknown group", filepath.Join(shortDir(t), "g.sock"), "no-such-group-hc",
			"-socket_group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := listenUnix(tt.path, 0o600, tt.group)
			if err == nil {
				ln.Close()
				t.Fatalf("listenUnix succeeded, want an error containing %q",
					tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want it to contain %q", err, tt.wantErr)
			}
			got := slices.DeleteFunc(dirNames(t, filepath.Dir(tt.path)),
				func(name string) bool { return name == filepath.Base(deep) })
			if len(got) != 0 {
				t.Errorf("directory holds %q after a failed listen, "+
					"want nothing", got)
			}
		})
	}
}

// TestListenUnixNeverWider watches the socket's directory while the
// socket is made: the file appears at its path once and is never changed
// afterwards, so it never had other permissions or another group there.
func TestListenUnixNeverWider(t *testing.T) {
	dir := shortDir(t)
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	defer unix.Close(fd)
	mask := uint32(unix.IN_CREATE | unix.IN_ATTRIB | unix.IN_MOVED_TO)
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		t.Fatal(err)
	}

	ln, err := listenUnix(filepath.Join(dir, "hc.sock"), 0o600, "")
	if err != nil {
		t.Fatalf("listenUnix: %v", err)
	}
	defer ln.Close()

	// The kernel queues the events within the calls that cause them.
	var got []string
	for _, ev := range readInotify(t, fd) {
		if ev.name == "hc.sock" {
			got = append(got, maskName(ev.mask))
		}
	}
	if len(got) != 1 || got[0] != "create" {
		t.Errorf("events at the socket's path = %q, want only one create", got)
	}
}

// inotifyEvent is one event of a watched directory.
type inotifyEvent struct {
	mask uint32
	name string
}

// readInotify returns the events queued on a non-blocking inotify fd.
func readInotify(t *testing.T, fd int) []inotifyEvent {
	t.Helper()
	var out []inotifyEvent
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return out
		}
		if err != nil {
			t.Fatalf("reading inotify: %v", err)
		}
		for b := buf[:n]; len(b) >= unix.SizeofInotifyEvent; {
			mask := binary.NativeEndian.Uint32(b[4:8])
			size := binary.NativeEndian.Uint32(b[12:16])
			name := b[unix.SizeofInotifyEvent : unix.SizeofInotifyEvent+int(size)]
			out = append(out, inotifyEvent{
				mask: mask, name: string(bytes.TrimRight(name, "\x00")),
			})
			b = b[unix.SizeofInotifyEvent+int(size):]
		}
	}
}

func maskName(mask uint32) string {
	switch {
	case mask&unix.IN_CREATE != 0:
		return "create"
	case mask&unix.IN_ATTRIB != 0:
		return "attrib"
	case mask&unix.IN_MOVED_TO != 0:
		return "moved_to"
	}
	return strconv.FormatUint(uint64(mask), 16)
}

// dirNames returns the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
