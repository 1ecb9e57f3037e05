package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
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
// one aligned line per state change, server error and periodic status. It
// remembers each check's last state, so that a status repeating it prints
// nothing. Write errors are ignored: there is nowhere to report them. A
// printer is not safe for concurrent use.
type printer struct {
	w     io.Writer
	color bool
	now   func() time.Time

	checks []checkLabel
	byID   map[uint64]checkLabel
	states map[uint64]messages.State

	idWidth, nameWidth, descWidth int
}

// checkLabel is what the printer shows of one check.
type checkLabel struct {
	id       uint64
	name     string
	desc     string
	expect   string
	interval time.Duration
}

// newPrinter returns a printer to w for checks, which start unknown. With
// color it marks states and errors with ANSI colours.
func newPrinter(w io.Writer, color bool, checks []demoCheck) *printer {
	p := &printer{
		w:      w,
		color:  color,
		now:    time.Now,
		byID:   make(map[uint64]checkLabel, len(checks)),
		states: make(map[uint64]messages.State, len(checks)),
	}
	for _, c := range checks {
		l := checkLabel{
			id:       c.Config.ID,
			name:     c.Name,
			desc:     describe(c.Config),
			expect:   c.Expect,
			interval: c.Config.Interval,
		}
		p.checks = append(p.checks, l)
		p.byID[l.id] = l
		p.idWidth = max(p.idWidth, len(strconv.FormatUint(l.id, 10)))
		p.nameWidth = max(p.nameWidth, len(l.name))
		p.descWidth = max(p.descWidth, len(l.desc))
	}
	return p
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

// Header prints where the server listens and, for each check, what it
// probes and what it should show.
func (p *printer) Header(socket string) {
	p.println(fmt.Sprintf("hcdemo: %d checks of loopback backends, "+
		"server socket %s", len(p.checks), socket))
	for _, l := range p.checks {
		p.println(fmt.Sprintf("  %s  %-*s  every %-3v  expect %s",
			p.label(l.id), p.descWidth, l.desc, l.interval, l.expect))
	}
	p.println("state changes (Ctrl-C to stop):")
}

// Print prints one message from the server.
func (p *printer) Print(msg any) {
	switch m := msg.(type) {
	case *messages.NotificationBatch:
		p.notifications(m)
	case *messages.StatusResponse:
		p.statuses(m)
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

// notifications prints a line per check whose state changed. A batch that
// covers every check without changing some is a periodic status, which
// gets one summary line.
func (p *printer) notifications(b *messages.NotificationBatch) {
	unchanged := 0
	for _, n := range b.Notifications {
		from := p.states[n.ID]
		p.states[n.ID] = n.Status.State
		if n.Status.State == from {
			unchanged++
			continue
		}
		p.println(p.changeLine(n, from))
	}
	if unchanged > 0 && len(b.Notifications) >= len(p.checks) {
		p.println(p.summaryLine())
	}
}

// changeLine formats the change of check cs from state from, e.g.
// "18:40:02.123  #3 http-flap  http GET /healthz 127.0.0.1:41234
// unknown -> healthy  HTTP GET to ...", aligned in columns.
func (p *printer) changeLine(cs messages.CheckStatus, from messages.State) string {
	at := cs.Status.LastCheck
	if at.IsZero() {
		at = p.now()
	}
	to := cs.Status.State
	plain := from.String() + " -> " + to.String()
	change := from.String() + " -> " + p.paintState(to) +
		strings.Repeat(" ", max(0, changeWidth-len(plain)))
	return fmt.Sprintf("%s  %s  %-*s  %s  %s", p.stamp(at), p.label(cs.ID),
		p.descWidth, p.byID[cs.ID].desc, change, oneLine(cs.Status.Message))
}

// summaryLine counts the checks in each state, e.g. "18:40:32.000
// periodic status: 5 healthy, 3 unhealthy".
func (p *printer) summaryLine() string {
	count := make(map[messages.State]int)
	for _, l := range p.checks {
		count[p.states[l.id]]++
	}
	s := fmt.Sprintf("%s  periodic status: %d healthy, %d unhealthy",
		p.stamp(p.now()), count[messages.StateHealthy],
		count[messages.StateUnhealthy])
	if n := count[messages.StateUnknown]; n > 0 {
		s += fmt.Sprintf(", %d unknown", n)
	}
	return s
}

// statuses prints every status of a StatusResponse with its counters.
func (p *printer) statuses(r *messages.StatusResponse) {
	p.println(fmt.Sprintf("%s  status of %d checks:",
		p.stamp(p.now()), len(r.Statuses)))
	for _, cs := range r.Statuses {
		p.states[cs.ID] = cs.Status.State
		p.println(p.statusLine(cs))
	}
}

// statusLine formats one check's full status, e.g. "  #1 tcp-echo
// healthy  12 ok  0 failed  0 restarts  TCP connect ...".
func (p *printer) statusLine(cs messages.CheckStatus) string {
	st := cs.Status
	name := st.State.String()
	pad := strings.Repeat(" ", max(0, stateWidth-len(name)))
	return fmt.Sprintf("  %s  %s%s  %5d ok  %5d failed  %d restarts  %s",
		p.label(cs.ID), p.paintState(st.State), pad, st.Successes,
		st.Failures, st.Restarts, oneLine(st.Message))
}

// errorLine formats an error reply, naming its check when it has an ID.
func (p *printer) errorLine(e *messages.Error) string {
	who := ""
	if e.ID != nil {
		who = strings.TrimRight(p.label(*e.ID), " ") + ": "
	}
	return fmt.Sprintf("%s  %s  %s%s", p.stamp(p.now()),
		p.paint(ansiRed, "error"), who, oneLine(e.Message))
}

// label returns "#<id> <name>" padded to the widest label; a check the
// printer does not know is named "?".
func (p *printer) label(id uint64) string {
	name := "?"
	if l, ok := p.byID[id]; ok {
		name = l.name
	}
	return fmt.Sprintf("#%-*d %-*s", p.idWidth, id, p.nameWidth, name)
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
