package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lbhealth/hcsupervisor/messages"
)

// Layout of the demo's lines.
const (
	// clockLayout formats the time at the start of a line.
	clockLayout = "15:04:05.000"
	// changeWidth fits the longest change, "unhealthy -> unhealthy".
	changeWidth = len("unhealthy -> unhealthy")
	// stateWidth fits the longest state name.
	stateWidth = len("unhealthy")
	// maxMessage is how many runes of a probe's message are printed.
	maxMessage = 160
)

// ANSI escapes, used only when colour is on.
const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

// printer writes the demo's output: a header that lists the checks, then
// one aligned line per state change, error, note and periodic status. It
// names checks by the names of the demo, whatever IDs the Engine gives
// them, and remembers each check's last state, so that a notification
// repeating it prints nothing. Write errors are ignored: there is nowhere
// to report them. A printer is safe for concurrent use.
type printer struct {
	w     io.Writer
	color bool
	now   func() time.Time

	mu      sync.Mutex
	labels  map[uint64]checkLabel // of every ID ever served
	current []uint64              // IDs served now, in the demo's order
	states  map[uint64]messages.State
	resent  map[uint64]bool // IDs re-sent unchanged since the last summary
	stopped bool

	nameWidth, descWidth, expectWidth int
}

// checkLabel is what the printer shows of one check.
type checkLabel struct {
	name     string
	desc     string
	expect   string
	interval time.Duration
}

// newPrinter returns a printer to w whose columns fit every check of all.
// With color it marks states and errors with ANSI colours.
func newPrinter(w io.Writer, color bool, all []demoCheck) *printer {
	p := &printer{
		w:      w,
		color:  color,
		now:    time.Now,
		labels: make(map[uint64]checkLabel),
		states: make(map[uint64]messages.State),
		resent: make(map[uint64]bool),
	}
	for _, c := range all {
		p.nameWidth = max(p.nameWidth, len(c.Name))
		p.descWidth = max(p.descWidth, len(c.Desc))
		p.expectWidth = max(p.expectWidth, len(c.Expect))
	}
	return p
}

// Serve records that checks are served now, checks[i] under ids[i], in
// place of what was served before. Checks still served keep their state.
func (p *printer) Serve(ids []uint64, checks []demoCheck) {
	p.mu.Lock()
	defer p.mu.Unlock()
	served := make(map[uint64]bool, len(ids))
	p.current = p.current[:0]
	for i, id := range ids {
		c := checks[i]
		p.labels[id] = checkLabel{
			name:     c.Name,
			desc:     c.Desc,
			expect:   c.Expect,
			interval: c.Check.Interval,
		}
		if !served[id] {
			p.current = append(p.current, id)
		}
		served[id] = true
	}
	for id := range p.states {
		if !served[id] {
			delete(p.states, id)
			delete(p.resent, id)
		}
	}
}

// describe returns what a check probes, e.g.
// "http GET /healthz 127.0.0.1:8080"; "https" or "tls" replaces the
// checker's name when the probe uses TLS.
func describe(c messages.Config) string {
	c.ApplyDefaults()
	s := c.String()
	if !c.Secure {
		return s
	}
	switch c.Checker {
	case messages.CheckerHTTP:
		return "https" + strings.TrimPrefix(s, "http")
	case messages.CheckerTCP:
		return "tls" + strings.TrimPrefix(s, "tcp")
	}
	return s
}

// Header prints intro, one line each, then what each check probes and
// what it should show, then the title of the lines to come.
func (p *printer) Header(intro []string, title string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range intro {
		p.println(line)
	}
	for _, id := range p.current {
		l := p.labels[id]
		p.println(fmt.Sprintf("  %-*s  %-*s  every %-3v  expect %-*s  id %d",
			p.nameWidth, l.name, p.descWidth, l.desc, l.interval,
			p.expectWidth, l.expect, id))
	}
	p.println(title)
}

// Note prints a line about the demo itself, e.g. a change of the checks.
func (p *printer) Note(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.println(p.stamp(p.now()) + "  " + p.paint(ansiYellow, text))
}

// Notify prints one notification. See notifyLocked.
func (p *printer) Notify(cs messages.CheckStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notifyLocked(cs)
}

// notifyLocked prints a line when the notification changes its check's
// state. A notification that repeats the state prints nothing; once
// every check with a state has been re-sent so since the last summary,
// which is what a periodic full status does, one summary line counts the
// checks in each state. A notification of a check no longer served says
// so. The printer's mutex must be held.
func (p *printer) notifyLocked(cs messages.CheckStatus) {
	if p.stopped {
		return
	}
	if !slices.Contains(p.current, cs.ID) {
		p.println(p.staleLine(cs))
		return
	}
	from := p.states[cs.ID]
	p.states[cs.ID] = cs.Status.State
	if cs.Status.State != from {
		p.println(p.changeLine(cs, from))
		return
	}
	p.resent[cs.ID] = true
	for id := range p.states {
		if !p.resent[id] {
			return
		}
	}
	p.println(p.summaryLine())
	clear(p.resent)
}

// Print prints one message from the server's socket.
func (p *printer) Print(msg any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch m := msg.(type) {
	case *messages.NotificationBatch:
		for _, cs := range m.Notifications {
			p.notifyLocked(cs)
		}
	case *messages.StatusResponse:
		p.statusesLocked(fmt.Sprintf("status of %d checks:",
			len(m.Statuses)), m.Statuses, true)
	case *messages.Error:
		p.println(p.errorLine(m))
	case badLine:
		p.println(p.stamp(p.now()) + "  " +
			p.paint(ansiRed, "bad line from server: ") + oneLine(m.err.Error()))
	default:
		p.println(fmt.Sprintf("%s  unexpected %T from server",
			p.stamp(p.now()), msg))
	}
}

// Statuses prints title and then every status: with its counters when
// full, else with the time of the probe it reports.
func (p *printer) Statuses(
	title string, statuses []messages.CheckStatus, full bool,
) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.statusesLocked(title, statuses, full)
}

// Stop makes later notifications print nothing, so that the final status
// is the last word.
func (p *printer) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
}

// changeLine formats the change of check cs from state from, e.g.
// "18:40:02.123  http-flap  http GET /healthz 127.0.0.1:41234
// unknown -> healthy  HTTP GET to ...", aligned in columns.
func (p *printer) changeLine(
	cs messages.CheckStatus, from messages.State,
) string {
	to := cs.Status.State
	plain := from.String() + " -> " + to.String()
	change := from.String() + " -> " + p.paintState(to)
	return p.line(cs, change, len(plain), oneLine(cs.Status.Message))
}

// staleLine formats the notification of a check that is no longer
// served, which the Engine ignores, e.g. "18:40:02.123  http-503  http
// GET /healthz 127.0.0.1:41234  unhealthy  ignored, not served: HTTP GET
// to ...".
func (p *printer) staleLine(cs messages.CheckStatus) string {
	state := cs.Status.State
	return p.line(cs, p.paintState(state), len(state.String()),
		"ignored, not served: "+oneLine(cs.Status.Message))
}

// line formats a line about check cs: the time of its probe, its name and
// description, then state, whose width without colour is width, padded
// to a column, then text.
func (p *printer) line(
	cs messages.CheckStatus, state string, width int, text string,
) string {
	at := cs.Status.LastCheck
	if at.IsZero() {
		at = p.now()
	}
	pad := strings.Repeat(" ", max(0, changeWidth-width))
	return fmt.Sprintf("%s  %s  %-*s  %s%s  %s", p.stamp(at), p.name(cs.ID),
		p.descWidth, p.labels[cs.ID].desc, state, pad, text)
}

// summaryLine counts the checks served in each state, e.g.
// "18:40:32.000  periodic status: 5 healthy, 3 unhealthy".
func (p *printer) summaryLine() string {
	count := make(map[messages.State]int)
	for _, id := range p.current {
		count[p.states[id]]++
	}
	s := fmt.Sprintf("%s  periodic status: %d healthy, %d unhealthy",
		p.stamp(p.now()), count[messages.StateHealthy],
		count[messages.StateUnhealthy])
	if n := count[messages.StateUnknown]; n > 0 {
		s += fmt.Sprintf(", %d unknown", n)
	}
	return s
}

// statusesLocked prints title and a line per status. The printer's mutex
// must be held.
func (p *printer) statusesLocked(
	title string, statuses []messages.CheckStatus, full bool,
) {
	p.println(p.stamp(p.now()) + "  " + title)
	for _, cs := range statuses {
		if slices.Contains(p.current, cs.ID) {
			p.states[cs.ID] = cs.Status.State
		}
		p.println(p.statusLine(cs, full))
	}
}

// statusLine formats one check's status: in full, e.g. "  tcp-echo
// healthy  12 ok  0 failed  0 restarts  TCP connect ...", else with the
// time of its probe instead of the counters, e.g. "  tcp-echo  healthy
// as of 18:40:02.123  TCP connect ...".
func (p *printer) statusLine(cs messages.CheckStatus, full bool) string {
	st := cs.Status
	name := st.State.String()
	pad := strings.Repeat(" ", max(0, stateWidth-len(name)))
	var detail string
	switch {
	case full:
		detail = fmt.Sprintf("%5d ok  %5d failed  %d restarts",
			st.Successes, st.Failures, st.Restarts)
	case st.LastCheck.IsZero():
		detail = "as of " + strings.Repeat(" ", len(clockLayout))
	default:
		detail = "as of " + p.stamp(st.LastCheck)
	}
	return fmt.Sprintf("  %s  %s%s  %s  %s", p.name(cs.ID),
		p.paintState(st.State), pad, detail, oneLine(st.Message))
}

// errorLine formats an error reply, naming its check when it has an ID.
func (p *printer) errorLine(e *messages.Error) string {
	who := ""
	if e.ID != nil {
		who = strings.TrimRight(p.name(*e.ID), " ") + ": "
	}
	return fmt.Sprintf("%s  %s  %s%s", p.stamp(p.now()),
		p.paint(ansiRed, "error"), who, oneLine(e.Message))
}

// name returns the check's name padded to the widest; a check the
// printer does not know is named "?" and its ID.
func (p *printer) name(id uint64) string {
	name := fmt.Sprintf("? (id %d)", id)
	if l, ok := p.labels[id]; ok {
		name = l.name
	}
	return fmt.Sprintf("%-*s", p.nameWidth, name)
}

// stamp formats t in local time for the start of a line.
func (p *printer) stamp(t time.Time) string {
	return t.Local().Format(clockLayout)
}

// paintState returns the state's name, coloured by state when colour is
// on.
func (p *printer) paintState(s messages.State) string {
	code := ansiYellow
	switch s {
	case messages.StateHealthy:
		code = ansiGreen
	case messages.StateUnhealthy:
		code = ansiRed
	}
	return p.paint(code, s.String())
}

// paint wraps s in the ANSI colour code when colour is on.
func (p *printer) paint(code, s string) string {
	if !p.color {
		return s
	}
	return code + s + ansiReset
}

// println writes line without trailing spaces.
func (p *printer) println(line string) {
	fmt.Fprintln(p.w, strings.TrimRight(line, " "))
}

// oneLine makes text from the server safe to print on one line: control
// characters, which could break the line or drive the terminal, become
// spaces, and text past maxMessage runes is cut.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > maxMessage {
		s = string([]rune(s)[:maxMessage-1]) + "…"
	}
	return strings.TrimSpace(s)
}
