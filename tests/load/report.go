package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// report is everything one invocation measured.
type report struct {
	Command    string
	Machine    machine
	Mode       string
	N          int
	Interval   time.Duration
	Listeners  string
	ResetClose bool
	Victims    int
	BatchDelay time.Duration
	LoadBefore string
	LoadAfter  string
	// Steal is the share of all CPUs' time the host stole during the run.
	Steal float64
	steal machineSample

	Floor      *floorResult  `json:",omitempty"`
	Naive      *designResult `json:",omitempty"`
	Supervisor *designResult `json:",omitempty"`
	Notify     *notifyResult `json:",omitempty"`
	// NotifySplit is the same failures' pipeline through the split
	// deployment, or nil when it was not measured.
	NotifySplit *notifyResult `json:",omitempty"`
	// SplitError says why the split deployment was not measured.
	SplitError string `json:",omitempty"`
	JSONHop    jsonHop
}

func newReport(o options) *report {
	return &report{
		Command:    "go run ./tests/load " + strings.Join(os.Args[1:], " "),
		Machine:    describeMachine(),
		Mode:       o.mode,
		ResetClose: o.resetClose,
		N:          o.n,
		Interval:   o.interval,
		BatchDelay: o.batchDelay,
		LoadBefore: loadAverage(),
		SplitError: o.noProxy,
		steal:      readMachine(),
	}
}

// row is one line of the table: a figure, its value in each design
// (floor paced, floor tight, naive, supervisor), the target and whether
// the supervisor meets it.
type row struct {
	figure  string
	cells   [4]string
	target  string
	verdict string
}

const na = "–"

func (r *report) print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "command: %s\n", r.Command)
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s, Linux %s; ip_local_port_range %s, "+
		"tcp_tw_reuse %s, tcp_max_tw_buckets %s, open files %s\n",
		m.CPUs, m.CPU, m.Go, m.Kernel, m.PortRange, m.TWReuse, m.TWBuckets, m.FDLimit)
	closing := "FIN (the default)"
	if r.ResetClose {
		closing = "reset (-tcp_reset_close)"
	}
	fmt.Fprintf(w, "run: N=%d checks every %v, supervisor %s; backends %s; "+
		"%d victim checks; probes close with %s; load average %s before, %s after; "+
		"CPU time stolen by the host %s\n\n",
		r.N, r.Interval, r.Mode, r.Listeners, r.Victims, closing,
		r.LoadBefore, r.LoadAfter, percent(r.Steal))
	fmt.Fprintln(w, "| figure | floor, paced | floor, tight | naive | supervisor | target (N=100,000) | |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, x := range r.rows() {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", x.figure,
			x.cells[0], x.cells[1], x.cells[2], x.cells[3], x.target, x.verdict)
	}
}

func (r *report) rows() []row {
	var rows []row
	rows = append(rows, r.rateRows()...)
	rows = append(rows, r.costRows()...)
	rows = append(rows, r.startRows()...)
	rows = append(rows, r.socketRows()...)
	rows = append(rows, r.notifyRows()...)
	rows = append(rows, r.applyRows()...)
	return rows
}

// cells fills a row's cells from the floor's two runs and the two
// designs; a missing design gets a dash.
func (r *report) cells(floor func(floorRun) string,
	design func(*designResult) string) [4]string {
	c := [4]string{na, na, na, na}
	if r.Floor != nil && floor != nil {
		c[0], c[1] = floor(r.Floor.Paced), floor(r.Floor.Tight)
	}
	if design != nil {
		if r.Naive != nil {
			c[2] = design(r.Naive)
		}
		if r.Supervisor != nil {
			c[3] = design(r.Supervisor)
		}
	}
	return c
}

func (r *report) rateRows() []row {
	planned := float64(r.N) / r.Interval.Seconds()
	rate := row{
		figure: fmt.Sprintf("probes/s (planned %.0f)", planned),
		cells: r.cells(
			func(f floorRun) string { return fmt.Sprintf("%.0f", f.PerSec) },
			func(d *designResult) string { return fmt.Sprintf("%.0f", d.Steady.PerSec) }),
		target: "10,000 sustained",
	}
	if s := r.Supervisor; s != nil {
		rate.verdict = verdict(s.Steady.PerSec >= 0.99*planned)
	}
	lag := row{
		figure: "start lag p50 / p99 / max",
		cells: r.cells(func(f floorRun) string {
			if f.Lag.N == 0 {
				return na
			}
			return fmt.Sprintf("%s / %s / %s", ms(f.Lag.P50), ms(f.Lag.P99), ms(f.Lag.Max))
		}, func(d *designResult) string {
			l := d.Steady.Lag
			if l.N == 0 {
				return "see the next row"
			}
			return fmt.Sprintf("%s / %s / %s", ms(l.P50), ms(l.P99), ms(l.Max))
		}),
		target: "p99 ≤ 25 ms",
	}
	if s := r.Supervisor; s != nil {
		lag.verdict = verdict(s.Steady.Lag.P99 <= 25*time.Millisecond)
		if s.Steady.Lag.N == 0 {
			lag.verdict = ""
		}
	}
	sched := row{
		figure: "Go scheduler latency p50 / p99; GC cycles, pause p99 (runtime/metrics)",
		cells: r.cells(
			func(f floorRun) string { return runtimeCell(f.Runtime) },
			func(d *designResult) string { return runtimeCell(d.Steady.Runtime) }),
	}
	rows := []row{rate, lag, sched}
	if s := r.Supervisor; s != nil && s.TelemetryLag != nil {
		t := s.TelemetryLag
		c := [4]string{na, na, na, fmt.Sprintf("≤ %s / ≤ %s; %.2f%% %s",
			ms(t.P50), ms(t.P99), 100*t.Under25ms, t.BucketNote)}
		rows = append(rows, row{
			figure: "start lag p50 / p99, server's " + lagMetric,
			cells:  c, target: "p99 ≤ 25 ms", verdict: verdict(t.Under25ms >= 0.99),
		})
	}
	return rows
}

func (r *report) costRows() []row {
	cpu := row{
		figure: "CPU per 1,000 probes",
		cells: r.cells(
			func(f floorRun) string { return ms(f.CPUPer1000) },
			func(d *designResult) string { return ms(d.Steady.CPUPer1000) }),
	}
	share := row{
		figure: "CPU used, share of all cores",
		cells: r.cells(
			func(f floorRun) string { return pct(f.CPU, f.Window, r.Machine.CPUs) },
			func(d *designResult) string {
				return pct(d.Steady.CPU, d.Steady.Window, r.Machine.CPUs)
			}),
	}
	backends := row{
		figure: "backends' CPU per 1,000 probes (their process)",
		cells: r.cells(
			func(f floorRun) string { return per1000(f.Backends, f.Probes) },
			func(d *designResult) string {
				return per1000(d.Steady.Backends, d.Steady.Probes)
			}),
	}
	busy := row{
		figure: "machine busy during the window, all processes (stolen by the host)",
		cells: r.cells(
			func(f floorRun) string {
				return fmt.Sprintf("%.0f%% (%s)", 100*f.MachineBusy, percent(f.MachineSteal))
			},
			func(d *designResult) string {
				return fmt.Sprintf("%.0f%% (%s)", 100*d.Steady.MachineBusy,
					percent(d.Steady.MachineSteal))
			}),
	}
	ratio := row{figure: "CPU per probe vs floor, paced / tight", cells: [4]string{na, na, na, na},
		target: "≤ 1.5× floor"}
	if f := r.Floor; f != nil {
		for i, d := range []*designResult{r.Naive, r.Supervisor} {
			if d == nil {
				continue
			}
			p := float64(d.Steady.CPUPer1000) / float64(f.Paced.CPUPer1000)
			t := float64(d.Steady.CPUPer1000) / float64(f.Tight.CPUPer1000)
			ratio.cells[2+i] = fmt.Sprintf("%.2f× / %.2f×", p, t)
			if i == 1 {
				ratio.verdict = verdict(t <= 1.5) + " (tight), " +
					verdict(p <= 1.5) + " (paced)"
			}
		}
	}
	mem := row{
		figure: "RSS per check above the empty process (Go heap)",
		cells: r.cells(nil, func(d *designResult) string {
			return fmt.Sprintf("%s (%s)", kib(perCheck(d.Loaded.RSS-d.Empty.RSS, r.N)),
				kib(perCheck(d.Loaded.HeapInuse-d.Empty.HeapInuse, r.N)))
		}),
		target: "≤ 10 KiB",
	}
	if s := r.Supervisor; s != nil {
		mem.verdict = verdict(perCheck(s.Loaded.RSS-s.Empty.RSS, r.N) <= 10*1024)
	}
	empty := row{
		figure: "RSS empty → loaded",
		cells: r.cells(nil, func(d *designResult) string {
			return fmt.Sprintf("%s → %s", mib(d.Empty.RSS), mib(d.Loaded.RSS))
		}),
	}
	gor := row{
		figure: "goroutines in steady state (per check)",
		cells: r.cells(nil, func(d *designResult) string {
			return fmt.Sprintf("%d (%.3f)", d.Steady.Goroutines,
				float64(d.Steady.Goroutines)/float64(r.N))
		}),
	}
	thr := row{
		figure: "OS threads, most seen",
		cells: r.cells(
			func(f floorRun) string { return fmt.Sprint(f.Threads) },
			func(d *designResult) string { return fmt.Sprint(d.Steady.ThreadsMax) }),
		target: "< 50",
	}
	if s := r.Supervisor; s != nil {
		thr.verdict = verdict(s.Steady.ThreadsMax < 50)
	}
	rows := []row{cpu, share, backends, busy, ratio, mem, empty, gor, thr}
	if n, s := r.Naive, r.Supervisor; n != nil && s != nil {
		c := float64(s.Steady.CPUPer1000) / float64(n.Steady.CPUPer1000)
		m := float64(s.Loaded.RSS-s.Empty.RSS) / float64(n.Loaded.RSS-n.Empty.RSS)
		rows = append(rows, row{
			figure:  "supervisor / naive: CPU per probe, memory per check",
			cells:   [4]string{na, na, na, fmt.Sprintf("%.2f× / %.2f×", c, m)},
			target:  "both < 1",
			verdict: verdict(c < 1) + " (CPU), " + verdict(m < 1) + " (memory)",
		})
	}
	return rows
}

func (r *report) startRows() []row {
	all := row{
		figure: "time until every check ran once",
		cells: r.cells(nil, func(d *designResult) string {
			if !d.AllRanOK {
				return fmt.Sprintf("not all: %d of %d", d.RanOnce, r.N)
			}
			if d.Apply != nil {
				return fmt.Sprintf("%s (%s after the apply)", secs(d.AllRan),
					secs(d.AllRan-d.Apply.Add))
			}
			return secs(d.AllRan)
		}),
		target: "≤ 1 interval (" + r.Interval.String() + ")",
	}
	burst := row{
		figure: "busiest second of the first interval / planned rate",
		cells: r.cells(nil, func(d *designResult) string {
			if d.Burst < 0 {
				return "not measured (interval under 2s)"
			}
			return fmt.Sprintf("%.2f×", d.Burst)
		}),
		target: "≤ 2×",
	}
	fails := row{
		figure: "failed probes (victims excluded)",
		cells: r.cells(
			func(f floorRun) string { return fmt.Sprint(f.Failures) },
			func(d *designResult) string { return fmt.Sprint(d.Steady.Failures) }),
		target: "0",
	}
	if s := r.Supervisor; s != nil {
		ran := s.AllRan
		if s.Apply != nil {
			ran -= s.Apply.Add
		}
		all.verdict = verdict(s.AllRanOK && ran <= r.Interval)
		if s.Burst >= 0 {
			burst.verdict = verdict(s.Burst <= 2)
		}
		fails.verdict = verdict(s.Steady.Failures == 0)
	}
	return []row{all, burst, fails}
}

func (r *report) socketRows() []row {
	tw := row{
		figure: "TIME_WAIT sockets, most seen (namespace)",
		cells: r.cells(
			func(f floorRun) string { return fmt.Sprint(f.TimeWait) },
			func(d *designResult) string { return fmt.Sprint(d.Steady.TimeWaitMax) }),
	}
	split := row{
		figure: "TIME_WAIT at window end: prober side / backend side / other",
		cells: r.cells(nil, func(d *designResult) string {
			t := d.Steady.TW
			return fmt.Sprintf("%d / %d / %d", t.Client, t.Server, t.Other)
		}),
	}
	return []row{tw, split}
}

func (r *report) notifyRows() []row {
	target := r.BatchDelay + 10*time.Millisecond
	var rows []row
	if n := r.Notify; n != nil {
		p := row{
			figure: fmt.Sprintf("notification, failed probe → Engine, p50 / p99 (%d of %d)",
				n.Received, n.Victims),
			cells: [4]string{na, na, na, fmt.Sprintf("%s / %s",
				ms(n.Pipeline.P50), ms(n.Pipeline.P99))},
			target:  "p99 ≤ " + ms(target),
			verdict: verdict(n.heardAll() && n.Pipeline.P99 <= target),
		}
		if n.Pipeline.N == 0 {
			p.cells[3], p.verdict = "not measured in this mode", ""
		}
		t := row{
			figure: "notification, backend failure → Engine, p50 / p99",
			cells: [4]string{na, na, na, fmt.Sprintf("%s / %s",
				ms(n.Total.P50), ms(n.Total.P99))},
			target: "(includes the wait for the next probe)",
		}
		rows = append(rows, p, t)
	}
	// The split deployment may add a batch's JSON hop, 10µs a
	// notification by its own target.
	splitTarget := target + hopBatch*10*time.Microsecond
	split := row{
		figure: "notification, failed probe → Engine, split (healthcheck-proxy), p50 / p99",
		target: "p99 ≤ " + ms(splitTarget) + " (" + ms(target) + " and a batch's JSON hop)",
	}
	switch n := r.NotifySplit; {
	case n != nil:
		split.figure += fmt.Sprintf(" (%d of %d)", n.Received, n.Victims)
		split.cells = [4]string{na, na, na, fmt.Sprintf("%s / %s",
			ms(n.Pipeline.P50), ms(n.Pipeline.P99))}
		split.verdict = verdict(n.heardAll() && n.Pipeline.P99 <= splitTarget)
		rows = append(rows, split)
	case r.SplitError != "":
		split.cells = [4]string{na, na, na, "not measured: " + r.SplitError}
		split.verdict = verdict(false)
		rows = append(rows, split)
	}
	h := r.JSONHop
	rows = append(rows, row{
		figure: fmt.Sprintf("JSON hop per notification (batch of %d): encode+decode, allocs, bytes", h.Batch),
		cells: [4]string{na, na, na, fmt.Sprintf("%.2f µs, %.1f allocs, %.0f B",
			h.NsPerNotif/1000, h.AllocsPerNotif, h.BytesPerNotif)},
		target:  "≤ 10 µs",
		verdict: verdict(h.NsPerNotif <= 10000),
	})
	return rows
}

func (r *report) applyRows() []row {
	s := r.Supervisor
	if s == nil || s.Apply == nil {
		return nil
	}
	a := s.Apply
	one := func(fig, val, target string, ok bool) row {
		return row{figure: fig, cells: [4]string{na, na, na, val},
			target: target, verdict: verdict(ok)}
	}
	rows := []row{
		one(fmt.Sprintf("config apply: %d adds", r.N), ms(a.Add), "≤ 1 s", a.Add <= time.Second),
	}
	if a.KeptOf > 0 {
		rows = append(rows,
			one(fmt.Sprintf("config apply: 10%% change (%d new targets): "+
				"in every status / manager done", a.Changed),
				ms(a.Change)+" / "+ms(a.ChangeManager), "≤ 200 ms",
				a.ChangeOK && a.Change <= 200*time.Millisecond),
			one("unchanged checks that kept state and counters",
				fmt.Sprintf("%d of %d", a.Kept, a.KeptOf), "all", a.Kept == a.KeptOf))
	}
	if a.Remove > 0 {
		rows = append(rows, row{
			figure: fmt.Sprintf("config apply: %d removals (status empty / actors stopped)", r.N),
			cells:  [4]string{na, na, na, ms(a.Remove) + " / " + ms(a.RemoveActors)},
		})
	}
	if a.StatusReply > 0 {
		rows = append(rows, row{
			figure: fmt.Sprintf("one status reply of %d checks (inside each time above)", r.N),
			cells:  [4]string{na, na, na, ms(a.StatusReply)},
		})
	} else {
		rows[0].figure += ", from the Engine's answer (100 ms polls of /metrics)"
	}
	return rows
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func perCheck(total int64, n int) int64 { return total / int64(n) }

func ms(d time.Duration) string {
	switch {
	case d < 0:
		return "> top bucket"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
}

func runtimeCell(r runtimeStats) string {
	if r == (runtimeStats{}) {
		return na
	}
	return fmt.Sprintf("%s / %s; %d, %s", ms(r.SchedP50), ms(r.SchedP99),
		r.GCCycles, ms(r.GCPauseP99))
}

func per1000(d time.Duration, probes int64) string {
	if probes == 0 {
		return na
	}
	return ms(d * 1000 / time.Duration(probes))
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/1024) }

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func pct(cpu, window time.Duration, cpus int) string {
	if window <= 0 {
		return na
	}
	return fmt.Sprintf("%.0f%%", 100*cpu.Seconds()/window.Seconds()/float64(cpus))
}

// percent formats a share as a percentage with one decimal, e.g. "0.4%".
func percent(share float64) string {
	return fmt.Sprintf("%.1f%%", 100*share)
}
