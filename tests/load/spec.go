package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/lbhealth/hcsupervisor/actors/probe"
	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
)

// The environment variables that turn the binary into one of its child
// roles, and the file that carries the role's spec.
const (
	envRole = "HCLOAD_ROLE"
	envSpec = "HCLOAD_SPEC"
)

// The child roles. Each design runs in a process of its own, so that its
// CPU time, RSS and OS threads are its alone: Go never gives back an OS
// thread, so one process running the designs one after another would
// carry the threads of the first into the figures of the next.
const (
	roleBackends = "backends"
	roleFloor    = "floor"
	roleNaive    = "naive"
	roleInproc   = "supervisor"
)

// backendBase is the first address of the backends: every listener is in
// 127.77.0.0/16, inside 127.0.0.0/8, so the harness never touches any
// other address, and its sockets are told apart from other processes'.
var backendBase = netip.MustParseAddr("127.77.0.1")

// spec is what a child role needs: the run's parameters and the backends'
// addresses. The coordinator writes it as JSON to a file named by envSpec.
type spec struct {
	// N is the number of checks; Interval and Timeout are each check's.
	N        int
	Interval time.Duration
	Timeout  time.Duration
	// Steady is how long the steady-state window of a design lasts;
	// FloorWindow that of each floor run.
	Steady      time.Duration
	FloorWindow time.Duration
	// FloorWorkers bounds the floor's concurrent probes.
	FloorWorkers int
	// TCP and HTTP are the backends' listeners, as ip:port; Victims is
	// how many of the last TCP listeners the latency phase fails.
	TCP     []netip.AddrPort
	HTTP    []netip.AddrPort
	Victims int
	// HTTPEvery makes every HTTPEvery-th check an HTTP check; 0 none.
	HTTPEvery int
	// Control is the backends' control socket; BackendsPID their process.
	Control     string
	BackendsPID int
	// Engine is the simulated Engine's socket.
	Engine string
	// Proxy, if set, is bin/healthcheck-proxy: the supervisor then serves
	// its JSON-lines socket on ProxySocket, and for its latency phase
	// runs the proxy against the split deployment's Engine, SplitEngine.
	Proxy       string
	ProxySocket string
	SplitEngine string
	// BatchDelay is the notifier's batch delay; NotifyInterval how often
	// the supervisor sends every status in full.
	BatchDelay     time.Duration
	NotifyInterval time.Duration
	// Probe are the probers' options, the same in every design.
	Probe probe.Options
	// Profile, if set, is a directory for CPU and heap profiles.
	Profile string
	// Result is where the child writes its result as JSON.
	Result string
}

// readSpec reads the spec named by the environment.
func readSpec() (*spec, error) {
	b, err := os.ReadFile(os.Getenv(envSpec))
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	var s spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decoding spec: %w", err)
	}
	return &s, nil
}

// writeJSON writes v as indented JSON to path.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// checkID is the ID of check i: sequential from 1, as the Engine numbers
// checks.
func checkID(i int) uint64 { return uint64(i) + 1 }

// isHTTP reports whether check i is an HTTP check.
func (s *spec) isHTTP(i int) bool {
	return s.HTTPEvery > 0 && i%s.HTTPEvery == s.HTTPEvery-1
}

// listener returns the TCP listener index of check i, or -1 for an HTTP
// check. TCP checks go round the TCP listeners in turn.
func (s *spec) listener(i int) int {
	if s.isHTTP(i) {
		return -1
	}
	return s.tcpOrdinal(i) % len(s.TCP)
}

// tcpOrdinal returns how many TCP checks come before TCP check i.
func (s *spec) tcpOrdinal(i int) int {
	if s.HTTPEvery == 0 {
		return i
	}
	return i - (i+1)/s.HTTPEvery
}

// isVictim reports whether check i probes a listener that the latency
// phase fails.
func (s *spec) isVictim(i int) bool {
	l := s.listener(i)
	return l >= len(s.TCP)-s.Victims
}

// target returns the address check i probes; shift moves it to another
// listener of the same kind, for the config-change phase.
func (s *spec) target(i, shift int) netip.AddrPort {
	if s.isHTTP(i) {
		return s.HTTP[(i/s.HTTPEvery+shift)%len(s.HTTP)]
	}
	return s.TCP[(s.tcpOrdinal(i)+shift)%len(s.TCP)]
}

// config returns check i's config, aimed at target(i, shift).
func (s *spec) config(i, shift int) messages.Config {
	t := s.target(i, shift)
	cfg := messages.Config{
		ID:       checkID(i),
		Interval: s.Interval,
		Timeout:  s.Timeout,
		Checker:  messages.CheckerTCP,
		IP:       t.Addr(),
		Port:     int(t.Port()),
	}
	if s.isHTTP(i) {
		cfg.Checker = messages.CheckerHTTP
	}
	cfg.ApplyDefaults()
	return cfg
}

// configs returns every check's config, each aimed at target(i, 0).
func (s *spec) configs() []messages.Config {
	out := make([]messages.Config, s.N)
	for i := range out {
		out[i] = s.config(i, 0)
	}
	return out
}

// engineChecks returns every check as the simulated Engine serves it.
func (s *spec) engineChecks() []enginesim.Check {
	out := make([]enginesim.Check, s.N)
	for i := range out {
		t := s.target(i, 0)
		c := enginesim.Check{
			ID:       checkID(i),
			Type:     enginesim.TypeTCP,
			IP:       t.Addr().String(),
			Port:     int(t.Port()),
			Interval: s.Interval,
			Timeout:  s.Timeout,
		}
		if s.isHTTP(i) {
			c.Type = enginesim.TypeHTTP
		}
		out[i] = c
	}
	return out
}

// plannedRate is the probes per second the schedule asks for.
func (s *spec) plannedRate() float64 {
	return float64(s.N) / s.Interval.Seconds()
}
