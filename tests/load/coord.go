package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors/probe"
	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
)

// maxReceipts bounds the unhealthy notifications kept per check.
const maxReceipts = 8

// coord runs one invocation: the backends, the simulated Engine, and each
// design's child in turn.
type coord struct {
	opts options
	dir  string
	exe  string
	spec spec

	backends *exec.Cmd
	stdin    io.WriteCloser
	sim      *enginesim.Server
	// heard is when the Engine heard of each unhealthy check.
	heard *receipts
	// split is the split deployment's Engine, or nil.
	split *splitEngine
}

func run(opts options) (*report, error) {
	c := &coord{opts: opts, heard: newReceipts()}
	var err error
	if c.exe, err = os.Executable(); err != nil {
		return nil, err
	}
	if c.dir, err = os.MkdirTemp("", "hcload"); err != nil {
		return nil, err
	}
	defer os.RemoveAll(c.dir)
	if opts.profile != "" {
		if err := os.MkdirAll(opts.profile, 0o755); err != nil {
			return nil, err
		}
	}

	// Every child raises its limit the same way; the report shows it.
	raiseFileLimit()
	rep := newReport(opts)
	if err := c.startBackends(); err != nil {
		return nil, err
	}
	defer c.stopBackends()
	if err := c.startEngine(); err != nil {
		return nil, err
	}
	defer c.sim.Close()
	if c.spec.Proxy != "" {
		if c.split, err = startSplitEngine(&c.spec); err != nil {
			return nil, err
		}
		defer c.split.sim.Close()
	}
	rep.Listeners = fmt.Sprintf("%d TCP on %d addresses, %d HTTP",
		len(c.spec.TCP), (len(c.spec.TCP)+opts.ports-1)/opts.ports, len(c.spec.HTTP))
	rep.Victims = c.spec.victimCount()

	for d := range strings.SplitSeq(opts.designs, ",") {
		progress("running %s (n=%d)", d, opts.n)
		if err := c.runDesign(d, rep); err != nil {
			return nil, fmt.Errorf("%s: %w", d, err)
		}
	}
	progress("measuring the JSON hop")
	rep.JSONHop = measureJSONHop(min(opts.floorWindow, 5*time.Second))
	rep.LoadAfter = loadAverage()
	_, rep.Steal = rep.steal.shares()
	if opts.out != "" {
		if err := writeJSON(opts.out, rep); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// progress tells the person running the harness what it is doing.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s load: %s\n", time.Now().Format("15:04:05"),
		fmt.Sprintf(format, args...))
}

func (c *coord) runDesign(d string, rep *report) error {
	switch {
	case d == roleFloor:
		var fr floorResult
		if err := c.runChild(roleFloor, &fr); err != nil {
			return err
		}
		rep.Floor = &fr
	case d == roleNaive:
		var dr designResult
		if err := c.runChild(roleNaive, &dr); err != nil {
			return err
		}
		rep.Naive = &dr
	case c.opts.mode == "process":
		dr, err := c.runProcess()
		if err != nil {
			return err
		}
		rep.Supervisor = dr
		rep.Notify = c.notifyLatency(dr.Latency, nil)
	default:
		var dr designResult
		if err := c.runChild(roleInproc, &dr); err != nil {
			return err
		}
		rep.Supervisor = &dr
		rep.Notify = c.notifyLatency(dr.Latency, dr.SplitLatency)
		if c.split != nil {
			rep.NotifySplit = pipelineLatency(c.split.receipts, dr.SplitLatency,
				math.MaxInt64)
			rep.SplitError = dr.SplitError
		}
	}
	if err := c.restoreVictims(); err != nil {
		return err
	}
	return nil
}

// restoreVictims brings failed backends back for the next design.
func (c *coord) restoreVictims() error {
	ls := victimListeners(&c.spec)
	if len(ls) == 0 {
		return nil
	}
	return controlBackends(c.spec.Control, "restore", ls)
}

// startBackends starts the backends' child and waits for its listeners.
func (c *coord) startBackends() error {
	o := c.opts
	bs := backendsSpec{
		TCP:        o.listeners,
		Ports:      o.ports,
		CloseFirst: o.closeFirst,
		Control:    filepath.Join(c.dir, "backends.sock"),
		Result:     filepath.Join(c.dir, "backends.json"),
	}
	if o.httpEvery > 0 && o.n >= o.httpEvery {
		bs.HTTP = max(2, o.listeners/50)
	}
	specPath := filepath.Join(c.dir, "backends-spec.json")
	if err := writeJSON(specPath, bs); err != nil {
		return err
	}
	cmd := c.command(roleBackends, specPath)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting backends: %w", err)
	}
	c.backends, c.stdin = cmd, stdin

	var br backendsResult
	deadline := time.Now().Add(time.Minute)
	for readJSONFile(bs.Result, &br) != nil {
		if time.Now().After(deadline) {
			return errors.New("backends did not start in a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.spec = c.childSpec(br, bs.Control)
	c.spec.BackendsPID = cmd.Process.Pid
	return nil
}

// childSpec returns the spec every design's child gets.
func (c *coord) childSpec(br backendsResult, control string) spec {
	o := c.opts
	s := spec{
		N:              o.n,
		Interval:       o.interval,
		Timeout:        o.timeout,
		Steady:         o.duration,
		FloorWindow:    o.floorWindow,
		FloorWorkers:   o.floorWorkers,
		TCP:            br.TCP,
		HTTP:           br.HTTP,
		Control:        control,
		Engine:         filepath.Join(c.dir, "engine.sock"),
		Proxy:          o.proxy,
		SplitEngine:    filepath.Join(c.dir, "split-engine.sock"),
		ProxySocket:    filepath.Join(c.dir, "server.sock"),
		BatchDelay:     o.batchDelay,
		NotifyInterval: o.notify,
		Profile:        o.profile,
		Probe:          probe.Options{ResetClose: o.resetClose},
	}
	if len(br.HTTP) > 0 {
		s.HTTPEvery = o.httpEvery
	}
	if o.victims > 0 {
		s.Victims = max(1, int(o.victims*float64(len(br.TCP))+0.5))
		s.Victims = min(s.Victims, len(br.TCP)-1)
	}
	return s
}

func (c *coord) stopBackends() {
	c.stdin.Close()
	c.backends.Wait()
}

// command returns the command that runs this binary as role.
func (c *coord) command(role, specPath string) *exec.Cmd {
	cmd := exec.Command(c.exe)
	cmd.Env = append(os.Environ(), envRole+"="+role, envSpec+"="+specPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd
}

// runChild runs one design's child and decodes its result into v.
func (c *coord) runChild(role string, v any) error {
	s := c.spec
	s.Result = filepath.Join(c.dir, role+".json")
	specPath := filepath.Join(c.dir, role+"-spec.json")
	if err := writeJSON(specPath, s); err != nil {
		return err
	}
	if err := c.command(role, specPath).Run(); err != nil {
		return fmt.Errorf("child %s: %w", role, err)
	}
	return readJSONFile(s.Result, v)
}

// startEngine starts the simulated Engine, which records when each
// unhealthy notification arrives.
func (c *coord) startEngine() error {
	c.sim = enginesim.New(enginesim.Config{
		IDBase:   1 << 48,
		History:  -1,
		OnNotify: c.heard.onNotify,
		Logger:   zerolog.Nop(),
	})
	return c.sim.Listen(c.spec.Engine)
}

// notifyResult is the latency from a backend's failure to the Engine.
type notifyResult struct {
	// Victims is how many checks probe a failed backend; Seen how many
	// of them the supervisor's probes saw fail; Received how many of
	// those the Engine heard of.
	Victims, Seen, Received int
	// Pipeline is from the end of the failed probe to the Engine's
	// receipt; Total from the backend's failure (including the wait for
	// the check's next probe, up to one interval).
	Pipeline, Total quantiles
}

// notifyLatency is the latency of the phase lp, from the Engine's
// receipts before next, the phase after, if any: the Engine hears of the
// next phase's failures too.
func (c *coord) notifyLatency(lp, next *latencyProbes) *notifyResult {
	if lp == nil {
		return nil
	}
	before := int64(math.MaxInt64)
	if next != nil {
		before = next.FailAt
	}
	if lp.Victims == nil {
		// Process mode: only the backends' failure time is known.
		nr := &notifyResult{Victims: lp.Want}
		var total []time.Duration
		for i := range c.spec.N {
			if !c.spec.isVictim(i) {
				continue
			}
			if at := c.heard.first(checkID(i), lp.FailAt, before); at != 0 {
				nr.Received++
				total = append(total, time.Duration(at-lp.FailAt))
			}
		}
		nr.Total = exactQuantiles(total)
		return nr
	}
	return pipelineLatency(c.heard, lp, before)
}

// pipelineLatency is the latency of the failed probes of lp to the
// Engine whose receipts heard holds, counting receipts before before;
// nil when the phase saw no failed probe of its own (process mode).
func pipelineLatency(heard *receipts, lp *latencyProbes, before int64) *notifyResult {
	if lp == nil || lp.Victims == nil {
		return nil
	}
	nr := &notifyResult{Victims: lp.Want, Seen: len(lp.Victims)}
	var pipe, total []time.Duration
	for id, end := range lp.Victims {
		at := heard.first(id, end, before)
		if at == 0 {
			continue
		}
		nr.Received++
		pipe = append(pipe, time.Duration(at-end))
		total = append(total, time.Duration(at-lp.FailAt))
	}
	nr.Pipeline, nr.Total = exactQuantiles(pipe), exactQuantiles(total)
	return nr
}

// heardAll reports whether the Engine heard of every failure the
// supervisor's probes saw: a latency of the others alone would leave out
// the slowest.
func (n *notifyResult) heardAll() bool {
	return n.Pipeline.N > 0 && n.Received == n.Seen
}

// machine describes where the harness runs.
type machine struct {
	CPUs      int
	CPU       string
	Go        string
	Kernel    string
	PortRange string
	TWReuse   string
	TWBuckets string
	FDLimit   string
}

func describeMachine() machine {
	m := machine{
		CPUs:      runtime.NumCPU(),
		Go:        runtime.Version(),
		Kernel:    sysctl("kernel/osrelease"),
		PortRange: sysctl("net/ipv4/ip_local_port_range"),
		TWReuse:   sysctl("net/ipv4/tcp_tw_reuse"),
		TWBuckets: sysctl("net/ipv4/tcp_max_tw_buckets"),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok &&
				strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/limits"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.HasPrefix(line, "Max open files") {
				m.FDLimit = strings.Join(strings.Fields(line)[3:5], "/")
			}
		}
	}
	return m
}

// loadAverage returns the one-minute load average: other processes on the
// machine take CPU from the run.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
