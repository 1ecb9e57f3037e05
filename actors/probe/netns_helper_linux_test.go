//go:build linux

package probe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbhealth/hcsupervisor/messages"
)

// netnsHelperEnv names the environment variable that carries the work of
// TestNetnsProbeHelper, in JSON: a netnsHelperJob.
const netnsHelperEnv = "HCSUPERVISOR_PROBE_NETNS_HELPER"

// netnsResultPrefix starts the line on which the helper reports its
// outcomes, in JSON.
const netnsResultPrefix = "netns-probe-outcomes: "

// netnsHelperJob is what probeInNetns asks of the helper process.
type netnsHelperJob struct {
	// Probes are run in order, one at a time.
	Probes []netnsProbe
	// Netns names the namespace the helper must run in; it refuses to
	// probe from any other.
	Netns string
}

// netnsProbe is one probe for the helper to run.
type netnsProbe struct {
	Config messages.Config
	// PingGroups, if set, is first written to net.ipv4.ping_group_range
	// of the namespace.
	PingGroups string
	// DropRaw drops CAP_NET_RAW from the probing thread first.
	DropRaw bool
}

// netnsOutcome is the outcome of a netnsProbe.
type netnsOutcome struct {
	Result  messages.ProbeResult
	Elapsed time.Duration
	// Socket is, for icmp, the kind of socket the probing thread could
	// open: "raw", "ping" or "none".
	Socket string
}

// probeInNetns runs each of probes, in order, in a helper process inside
// ns, and returns their outcomes. A whole process keeps every socket of
// every probe in the namespace by construction, whatever goroutine opens
// it (an http.Transport dials from its own): no probe can send a packet
// anywhere else. The helper's own TestMain fails it if a probe leaves a
// goroutine behind.
func probeInNetns(
	t *testing.T, ns *netns, probes []netnsProbe,
) []netnsOutcome {
	t.Helper()
	return probeInNetnsWithout(t, ns, nil, probes)
}

// probeInNetnsWithout is probeInNetns with a helper process that can never
// hold the capabilities caps: it is started from a thread that dropped
// them from its bounding, inheritable and ambient sets, so that no thread
// of the helper has them, whichever goroutine it probes on.
func probeInNetnsWithout(
	t *testing.T, ns *netns, caps []int, probes []netnsProbe,
) []netnsOutcome {
	t.Helper()
	job, err := json.Marshal(netnsHelperJob{Probes: probes, Netns: ns.name})
	if err != nil {
		t.Fatalf("encoding the helper's job: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("finding the test binary: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.name, exe,
		"-test.run=^TestNetnsProbeHelper$", "-test.count=1",
		"-test.timeout="+helperTimeout.String())
	cmd.Env = append(os.Environ(), netnsHelperEnv+"="+string(job),
		// A binary built with -race otherwise sleeps a second at exit.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := onThreadWithout(caps, cmd.Run); err != nil {
		t.Fatalf("helper in %s: %v\nstdout:\n%s\nstderr:\n%s",
			ns.name, err, &stdout, &stderr)
	}

	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), netnsResultPrefix)
		if !ok {
			continue
		}
		var outcomes []netnsOutcome
		if err := json.Unmarshal([]byte(line), &outcomes); err != nil {
			t.Fatalf("decoding the helper's outcomes %q: %v", line, err)
		}
		if len(outcomes) != len(probes) {
			t.Fatalf("helper returned %d outcomes, want %d",
				len(outcomes), len(probes))
		}
		return outcomes
	}
	t.Fatalf("helper reported no outcomes; stdout:\n%s\nstderr:\n%s",
		&stdout, &stderr)
	return nil
}

// inNetns reports whether the calling thread is in the namespace name:
// whether the two are one file of the namespace filesystem.
func inNetns(name string) (bool, error) {
	var self, want unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &self); err != nil {
		return false, err
	}
	if err := unix.Stat("/run/netns/"+name, &want); err != nil {
		return false, err
	}
	return self.Dev == want.Dev && self.Ino == want.Ino, nil
}

// TestNetnsProbeHelper is not a test of its own: it is the process that
// probeInNetns starts inside a namespace, and it is skipped otherwise. It
// runs the probes it is given and prints their outcomes on one line.
func TestNetnsProbeHelper(t *testing.T) {
	raw := os.Getenv(netnsHelperEnv)
	if raw == "" {
		t.Skip("the helper process of the network namespace tests; " +
			"runs only inside a namespace that such a test creates")
	}
	var job netnsHelperJob
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		t.Fatalf("decoding job: %v", err)
	}
	// A guard: probe only from the namespace the test made for it.
	if ok, err := inNetns(job.Netns); !ok || err != nil {
		t.Fatalf("helper is not in network namespace %s (%v): refusing to probe",
			job.Netns, err)
	}

	outcomes := make([]netnsOutcome, len(job.Probes))
	for i := range job.Probes {
		pr := &job.Probes[i]
		if err := pr.Config.Validate(); err != nil {
			t.Fatalf("config %d: %v", pr.Config.ID, err)
		}
		if pr.PingGroups != "" {
			err := os.WriteFile("/proc/sys/net/ipv4/ping_group_range",
				[]byte(pr.PingGroups), 0)
			if err != nil {
				t.Fatalf("setting ping_group_range: %v", err)
			}
		}
		var err error
		outcomes[i], err = runNetnsProbe(t.Context(), pr)
		if err != nil {
			t.Fatalf("probe %d: %v", i, err)
		}
	}
	out, err := json.Marshal(outcomes)
	if err != nil {
		t.Fatalf("encoding outcomes: %v", err)
	}
	fmt.Println(netnsResultPrefix + string(out))
}

// runNetnsProbe runs pr on a thread of its own, which ends with it, so
// that dropping a capability affects nothing else.
func runNetnsProbe(ctx context.Context, pr *netnsProbe) (netnsOutcome, error) {
	var o netnsOutcome
	err := onOwnThread(func() error {
		if pr.DropRaw {
			if err := dropCaps(unix.CAP_NET_RAW); err != nil {
				return fmt.Errorf("dropping CAP_NET_RAW: %w", err)
			}
		}
		if pr.Config.Checker == messages.CheckerICMP {
			o.Socket = echoSocketKind(pr.Config.IP.Is6())
		}
		p, err := New(&pr.Config)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		start := time.Now()
		o.Result = p.Probe(ctx)
		o.Elapsed = time.Since(start)
		return nil
	})
	return o, err
}

// echoSocketKind says which kind of ICMP socket openEcho gives the
// calling thread: "raw", "ping", "none" or the error it met.
func echoSocketKind(v6 bool) string {
	sock, err := openEcho(v6)
	switch {
	case errors.Is(err, ErrNoICMPSocket):
		return "none"
	case err != nil:
		return err.Error()
	}
	defer sock.conn.Close()
	if sock.raw {
		return "raw"
	}
	return "ping"
}

// onOwnThread runs fn on an OS thread of its own and returns fn's error.
// The thread is locked to fn's goroutine and never unlocked, so the
// runtime ends it with the goroutine: whatever fn changes about the
// thread (its namespace, its capabilities) goes with it and never
// reaches another goroutine.
func onOwnThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- fn()
	}()
	return <-errc
}

// onThreadWithout runs fn on a thread of its own that first drops caps
// from its bounding and inheritable sets and clears its ambient set, so
// that a process fn starts (the child of that thread) cannot gain them
// at exec, even as root. With no caps, fn runs on the calling goroutine.
func onThreadWithout(caps []int, fn func() error) error {
	if len(caps) == 0 {
		return fn()
	}
	return onOwnThread(func() error {
		if err := dropForChildren(caps); err != nil {
			return fmt.Errorf("dropping capabilities %v: %w", caps, err)
		}
		return fn()
	})
}

// dropForChildren drops caps from the calling thread's bounding and
// inheritable sets, and clears its ambient set.
func dropForChildren(caps []int) error {
	for _, c := range caps {
		err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
		if err != nil {
			return fmt.Errorf("bounding set: %w", err)
		}
	}
	err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("ambient set: %w", err)
	}
	return editCaps(func(data *[2]unix.CapUserData) {
		for _, c := range caps {
			data[c/32].Inheritable &^= 1 << (c % 32)
		}
	})
}

// dropCaps removes caps from the calling thread's effective set.
func dropCaps(caps ...int) error {
	return editCaps(func(data *[2]unix.CapUserData) {
		for _, c := range caps {
			data[c/32].Effective &^= 1 << (c % 32)
		}
	})
}

// editCaps changes the calling thread's capability sets by edit.
func editCaps(edit func(data *[2]unix.CapUserData)) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	edit(&data)
	return unix.Capset(&hdr, &data[0])
}
