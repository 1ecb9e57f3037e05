package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lbhealth/hcsupervisor/messages"
)

// Layout of the tables.
const (
	// columnGap is the space between two columns.
	columnGap = 2
	// defaultWidth is the status table's width when there is no
	// terminal to measure.
	defaultWidth = 80
	// minMessage is the least room the status table leaves for MESSAGE,
	// however narrow the terminal.
	minMessage = 20
)

// statusHeader is the status table's header; MESSAGE, last, takes the
// room the others leave.
var statusHeader = []string{"ID", "CHECKER", "TARGET", "STATE", "SINCE",
	"LAST", "OK", "FAIL", "RESTARTS", "MESSAGE"}

// renderStatus writes shown, the checks that passed the filters, as a
// table no wider than width columns (unless it has to be), and a summary
// of all, the checks the server reported. Ages are measured from now.
func renderStatus(w io.Writer, all, shown []messages.CheckReport,
	now time.Time, width int) error {
	rows := [][]string{statusHeader}
	for _, cr := range shown {
		rows = append(rows, statusRow(cr, now))
	}
	switch {
	case len(shown) > 0:
		fitLastColumn(rows, width)
		if err := writeTable(w, rows); err != nil {
			return err
		}
	case len(all) > 0:
		fmt.Fprintln(w, "no check matches")
	}
	_, err := fmt.Fprintln(w, statusSummary(all, len(shown)))
	return err
}

// statusRow is the table row of one check.
func statusRow(cr messages.CheckReport, now time.Time) []string {
	st := cr.Status
	since, last := "-", "-"
	if cr.Since != nil {
		since = ago(now.Sub(*cr.Since))
	}
	if !st.LastCheck.IsZero() {
		last = formatDuration(st.Duration)
	}
	state := st.State.String()
	if st.Unconfirmed {
		// From the state file; the Engine hears it once a probe agrees.
		state += " (restored)"
	}
	return []string{
		strconv.FormatUint(cr.ID, 10),
		string(cr.Checker),
		cr.Target,
		state,
		since,
		last,
		strconv.FormatUint(st.Successes, 10),
		strconv.FormatUint(st.Failures, 10),
		strconv.FormatUint(st.Restarts, 10),
		st.Message,
	}
}

// statusSummary counts all by state: "N checks: H healthy, U unhealthy,
// K unknown", with "(S shown)" when filters left out some.
func statusSummary(all []messages.CheckReport, shown int) string {
	var n stateCounts
	for _, cr := range all {
		n.add(cr.Status.State)
	}
	s := n.String()
	if shown != len(all) {
		s += fmt.Sprintf(" (%d shown)", shown)
	}
	return s
}

// stateCounts counts checks by state.
type stateCounts struct {
	total, healthy, unhealthy, unknown int
}

// add counts one check in state s.
func (n *stateCounts) add(s messages.State) {
	n.total++
	switch s {
	case messages.StateHealthy:
		n.healthy++
	case messages.StateUnhealthy:
		n.unhealthy++
	case messages.StateUnknown:
		n.unknown++
	}
}

// String returns "N checks: H healthy, U unhealthy, K unknown".
func (n stateCounts) String() string {
	return fmt.Sprintf("%s: %d healthy, %d unhealthy, %d unknown",
		plural(n.total, "check"), n.healthy, n.unhealthy, n.unknown)
}

// fitLastColumn shortens the last cell of each row so that the rows fit
// in width columns, leaving it at least minMessage runes.
func fitLastColumn(rows [][]string, width int) {
	if len(rows) == 0 {
		return
	}
	last := len(rows[0]) - 1
	used := 0
	for col := range last {
		w := 0
		for _, r := range rows {
			w = max(w, utf8.RuneCountInString(sanitize(r[col])))
		}
		used += w + columnGap
	}
	room := max(width-used, minMessage)
	for _, r := range rows {
		r[last] = truncate(sanitize(r[last]), room)
	}
}

// writeTable writes rows as columns aligned by a tabwriter, without the
// padding an empty last cell leaves at the end of a line.
func writeTable(w io.Writer, rows [][]string) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, columnGap, ' ', 0)
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = sanitize(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var out strings.Builder
	for line := range strings.Lines(b.String()) {
		out.WriteString(strings.TrimRight(line, " \n") + "\n")
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// renderHealth writes a HealthReport as aligned "name value" lines,
// with times in loc.
func renderHealth(w io.Writer, rep *messages.HealthReport,
	loc *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 0, columnGap, ' ', 0)
	fmt.Fprintf(tw, "status\t%s\n", sanitize(rep.Status))
	for i, p := range rep.Problems {
		label := ""
		if i == 0 {
			label = "problems"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, sanitize(p))
	}
	fmt.Fprintf(tw, "checks\t%d\n", rep.Checks)
	fmt.Fprintf(tw, "clients\t%d\n", rep.Clients)
	if rep.LastUpdate != nil {
		fmt.Fprintf(tw, "last update\t%s\n",
			agoAt(rep.LastUpdateAge, *rep.LastUpdate, loc))
	}
	fmt.Fprintf(tw, "engine\t%s\n", engineLine(rep.Engine, loc))
	if l := rep.StartLag; l != nil {
		fmt.Fprintf(tw, "start lag\tp50 %s, p99 %s over %d probes\n",
			secs(l.P50Seconds), secs(l.P99Seconds), l.Probes)
	}
	return tw.Flush()
}

// agoAt says how long ago, ageSecs seconds, something happened, and when:
// "5s ago (2026-12-04 06:00:00 UTC)".
func agoAt(ageSecs float64, at time.Time, loc *time.Location) string {
	age := time.Duration(ageSecs * float64(time.Second))
	return fmt.Sprintf("%s (%s)", ago(age), at.In(loc).Format(time.DateTime+" MST"))
}

// secs formats seconds as a rounded duration.
func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(10 * time.Microsecond).String()
}

// engineLine describes the Engine bridge's view in one line.
func engineLine(e *messages.EngineHealth, loc *time.Location) string {
	if e == nil {
		return "no Engine bridge in this process"
	}
	parts := []string{"unreachable"}
	if e.Reachable {
		parts[0] = "reachable"
	}
	if e.LastFetch == nil {
		parts = append(parts, "no fetch yet")
	} else {
		parts = append(parts, "last fetch "+agoAt(e.LastFetchAge, *e.LastFetch, loc))
	}
	parts = append(parts, fmt.Sprintf("%d pending", e.Pending))
	return strings.Join(parts, ", ")
}

// Layout of watch's lines.
const (
	// clockLayout formats the time at the start of a line.
	clockLayout = "15:04:05.000"
	// changeWidth fits the longest change, "unhealthy -> unhealthy".
	changeWidth = len("unhealthy -> unhealthy")
	// durationWidth fits most probe durations, "123.45ms".
	durationWidth = len("123.45ms")
)

// ANSI escapes, used only when colour is on.
const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

// watchLine formats a status of check cs.ID seen at at, as in
//
//	18:45:55.940  42  unknown -> healthy  2.35ms  TCP connect to ...
//
// from is the check's state before, nil at its first sight ("-> healthy");
// a status that repeats it prints as "= healthy". IDs are right-aligned
// in idWidth columns; with color, states are coloured.
func watchLine(at time.Time, cs messages.CheckStatus, idWidth int,
	from *messages.State, color bool) string {
	to := cs.Status.State
	var change string
	switch {
	case from == nil:
		change = "-> " + to.String()
	case *from == to:
		change = "= " + to.String()
	default:
		change = from.String() + " -> " + to.String()
	}
	change += strings.Repeat(" ", max(changeWidth-len(change), 0))
	if color {
		change = paintStates(change)
	}
	dur := "-"
	if !cs.Status.LastCheck.IsZero() {
		dur = formatDuration(cs.Status.Duration)
	}
	line := fmt.Sprintf("%s  %*d  %s  %*s  %s", at.Format(clockLayout),
		idWidth, cs.ID, change, durationWidth, dur,
		sanitize(cs.Status.Message))
	return strings.TrimRight(line, " ")
}

// paintStates colours the state names in s: healthy green, unhealthy
// red, unknown yellow.
func paintStates(s string) string {
	fields := strings.SplitAfter(s, " ")
	for i, f := range fields {
		word := strings.TrimRight(f, " ")
		code := ""
		switch word {
		case "healthy":
			code = ansiGreen
		case "unhealthy":
			code = ansiRed
		case "unknown":
			code = ansiYellow
		}
		if code != "" {
			fields[i] = code + word + ansiReset + f[len(word):]
		}
	}
	return strings.Join(fields, "")
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ago formats a duration in the past as a short age: "45s ago",
// "3m12s ago", "5h3m ago", "2d5h ago".
func ago(d time.Duration) string {
	d = max(d, 0).Truncate(time.Second)
	const day = 24 * time.Hour
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", d/time.Second)
	case d < time.Hour:
		s = fmt.Sprintf("%dm%ds", d/time.Minute, d%time.Minute/time.Second)
	case d < day:
		s = fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	default:
		s = fmt.Sprintf("%dd%dh", d/day, d%day/time.Hour)
	}
	return s + " ago"
}

// formatDuration formats a probe's duration with three significant
// digits or so: "850µs", "2.35ms", "1.204s", "31s".
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	case d < time.Minute:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// sanitize replaces control characters, which would break a table or a
// line, with spaces.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// truncate shortens s to n runes, the last of them an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// plural returns "1 check", "2 checks".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
