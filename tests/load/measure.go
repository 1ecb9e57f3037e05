package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user plus system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is the unit of /proc/<pid>/stat's times: USER_HZ, 100 on
// every Linux this runs on.
const clockTick = 10 * time.Millisecond

// procCPU returns the CPU time process pid has used, from
// /proc/<pid>/stat (in clock ticks, so 10ms steps).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; fields resume after its ')'.
	rest := b[bytes.LastIndexByte(b, ')')+2:]
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * clockTick, nil
}

// machineSample is the time all CPUs together spent busy, stolen and in
// total since boot, from /proc/stat: busy over total in a window is how
// loaded the whole machine was, other processes included; stolen
// (counted in busy) is the time a virtual machine's CPUs were ready but
// its host ran something else.
type machineSample struct{ busy, steal, total time.Duration }

func readMachine() machineSample {
	var m machineSample
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return m
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		d := time.Duration(n) * clockTick
		m.total += d
		if i != 3 && i != 4 && i < 8 { // not idle, not iowait, not guest
			m.busy += d
		}
		if i == 7 {
			m.steal = d
		}
	}
	return m
}

// shares returns the shares of all CPUs' time that were busy and stolen
// from s until now.
func (s machineSample) shares() (busy, steal float64) {
	now := readMachine()
	total := float64(now.total - s.total)
	if total <= 0 {
		return 0, 0
	}
	return float64(now.busy-s.busy) / total, float64(now.steal-s.steal) / total
}

// cpuMeter measures one window's CPU: this process's, the backends', and
// the whole machine's.
type cpuMeter struct {
	self, backends time.Duration
	machine        machineSample
	pid            int
}

func startCPU(backendsPID int) cpuMeter {
	m := cpuMeter{self: cpuTime(), pid: backendsPID, machine: readMachine()}
	m.backends, _ = procCPU(backendsPID)
	return m
}

// windowCPU is what one window used.
type windowCPU struct {
	// Self is this process's CPU time; Backends the backends'.
	Self, Backends time.Duration
	MachineLoad
}

// MachineLoad is how loaded the whole machine was in a window:
// MachineBusy is the share of all CPUs' time that was busy, other
// processes' included; MachineSteal the share the host stole (within
// MachineBusy).
type MachineLoad struct {
	MachineBusy, MachineSteal float64
}

func (m cpuMeter) stop() windowCPU {
	w := windowCPU{Self: cpuTime() - m.self}
	if b, err := procCPU(m.pid); err == nil {
		w.Backends = b - m.backends
	}
	w.MachineBusy, w.MachineSteal = m.machine.shares()
	return w
}

// procStatus holds the fields of /proc/<pid>/status the harness reads.
type procStatus struct {
	RSS     int64 // bytes
	Threads int
}

// readStatus reads /proc/<pid>/status; pid 0 means this process.
func readStatus(pid int) (procStatus, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return procStatus{}, err
	}
	var st procStatus
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			st.RSS = kb << 10
		case "Threads":
			st.Threads, _ = strconv.Atoi(f[0])
		}
	}
	return st, nil
}

// settle collects garbage and returns freed memory to the OS, so that the
// RSS read next reflects live memory.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// memSnapshot is a process's memory at one moment, after settle.
type memSnapshot struct {
	RSS        int64
	HeapInuse  int64
	Goroutines int
	Threads    int
}

// snapshotMem settles and reads this process's memory.
func snapshotMem() memSnapshot {
	settle()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st, _ := readStatus(0)
	return memSnapshot{
		RSS:        st.RSS,
		HeapInuse:  int64(ms.HeapInuse),
		Goroutines: runtime.NumGoroutine(),
		Threads:    st.Threads,
	}
}

// timeWait returns the number of TIME_WAIT sockets in this network
// namespace, from /proc/net/sockstat ("TCP: ... tw N"), which the kernel
// keeps as a counter: cheap to read at any rate.
func timeWait() int {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, "TCP:") {
			continue
		}
		f := strings.Fields(line)
		for i := 1; i+1 < len(f); i++ {
			if f[i] == "tw" {
				n, _ := strconv.Atoi(f[i+1])
				return n
			}
		}
	}
	return -1
}

// twSplit counts the TIME_WAIT sockets of the run's backends, from
// /proc/net/tcp (state 06), by side: Client holds those whose remote end
// is a backend listener (the prober closed first), Server those whose
// local end is (the backend closed first). Other counts the rest of the
// namespace's TIME_WAIT sockets, other processes' included.
type twSplit struct {
	Client, Server, Other int
}

// scanTimeWait reads /proc/net/tcp. It is costly with many sockets, so
// the harness calls it outside the windows it measures.
func scanTimeWait(listeners map[netip.AddrPort]bool) (twSplit, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return twSplit{}, err
	}
	defer f.Close()
	var s twSplit
	sc := bufio.NewScanner(bufio.NewReaderSize(f, 1<<20))
	sc.Scan() // the header
	for sc.Scan() {
		local, remote, ok := timeWaitLine(sc.Text())
		switch {
		case !ok:
		case listeners[remote]:
			s.Client++
		case listeners[local]:
			s.Server++
		default:
			s.Other++
		}
	}
	return s, sc.Err()
}

// timeWaitLine parses a line of /proc/net/tcp, whose columns the kernel
// writes at fixed widths after "sl:", "  12: 0100007F:1F90 0100007F:A1B2
// 06 ...", and returns its addresses if its state is TIME_WAIT.
func timeWaitLine(line string) (local, remote netip.AddrPort, ok bool) {
	i := strings.IndexByte(line, ':')
	if i < 0 || len(line) < i+32 {
		return local, remote, false
	}
	f := line[i+2:]
	if f[28:30] != "06" {
		return local, remote, false
	}
	local, lok := parseProcAddr(f[0:13])
	remote, rok := parseProcAddr(f[14:27])
	return local, remote, lok && rok
}

// parseProcAddr parses an address of /proc/net/tcp, "0100007F:1F90": the
// IPv4 address as a little-endian hex word, the port in hex.
func parseProcAddr(s string) (netip.AddrPort, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok || len(h) != 8 {
		return netip.AddrPort{}, false
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	a := netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]})
	return netip.AddrPortFrom(a, uint16(port)), true
}

// sysctl reads one value under /proc/sys, e.g. "net/ipv4/tcp_tw_reuse".
func sysctl(name string) string {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// hist is a log-linear histogram of durations: 16 sub-buckets per power
// of two, so a quantile is within about 6% of the true value. Its
// methods are safe for concurrent use.
type hist struct {
	counts [64 * histSub]atomic.Int64
	n      atomic.Int64
	max    atomic.Int64
	sum    atomic.Int64
}

const histSub = 16

func histIndex(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - 5 // v >> e is in [16, 32)
	return (e+1)*histSub + int(v>>e) - histSub
}

// histUpper returns the largest value of bucket i.
func histUpper(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := i/histSub - 1
	m := int64(i%histSub + histSub)
	return (m+1)<<e - 1
}

// add records one value.
func (h *hist) add(d time.Duration) {
	v := int64(d)
	h.counts[histIndex(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// quantile returns the value under which fraction q of the values fall.
func (h *hist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(histUpper(i), h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// summary returns the histogram's p50, p99 and max.
func (h *hist) summary() quantiles {
	return quantiles{
		N:   h.n.Load(),
		P50: h.quantile(0.50),
		P99: h.quantile(0.99),
		Max: time.Duration(h.max.Load()),
	}
}

// exactQuantiles summarises ds exactly, ranking as hist does, for the
// thousand or so latencies a phase measures: hist reports its bucket's
// upper edge, 4 ms wide near 100 ms, too coarse for a target of 110 ms.
// It sorts ds.
func exactQuantiles(ds []time.Duration) quantiles {
	if len(ds) == 0 {
		return quantiles{}
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		return ds[int(math.Ceil(q*float64(len(ds))))-1]
	}
	return quantiles{N: int64(len(ds)), P50: at(0.50), P99: at(0.99),
		Max: ds[len(ds)-1]}
}

// quantiles summarises a distribution of durations.
type quantiles struct {
	N             int64
	P50, P99, Max time.Duration
}

// readJSONFile decodes the JSON file at path into v.
func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
