package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/lbhealth/hcsupervisor/messages"
)

// maxTreeChecks is how many check actors tree shows under one parent
// without -all.
const maxTreeChecks = 10

// treeHeader is the tree table's header.
var treeHeader = []string{"ACTOR", "KIND", "MAILBOX", "RESTARTS"}

// treeNode is an actor and its children, sorted for display.
type treeNode struct {
	a        *messages.ActorReport
	children []*treeNode
}

// treePrinter builds the rows of the tree table.
type treePrinter struct {
	all     bool
	rows    [][]string
	visited map[*treeNode]bool
	// hidden counts the check actors left out.
	hidden int
}

// renderTree writes the actors of rep as an indented tree with their
// kind, mailbox length and restarts, and a summary. Unless all, a parent
// shows its first maxTreeChecks check actors and one line for the rest.
func renderTree(w io.Writer, rep *messages.TreeReport, all bool) error {
	order := buildTree(rep.Actors)
	p := &treePrinter{all: all, rows: [][]string{treeHeader},
		visited: make(map[*treeNode]bool, len(order))}

	// Roots first, then whatever a broken parent chain left unreachable.
	for _, n := range order {
		if n.a.Parent == "" && !p.visited[n] {
			p.node(n, "", "")
		}
	}
	for _, n := range order {
		if !p.visited[n] {
			a := *n.a
			a.Parent = ""
			n.a = &a
			p.node(n, "", "")
		}
	}
	if len(order) > 0 {
		if err := writeTable(w, p.rows); err != nil {
			return err
		}
	}
	summary := treeSummary(order)
	if p.hidden > 0 {
		summary += fmt.Sprintf("; %s not listed (-all lists them)",
			plural(p.hidden, "check"))
	}
	_, err := fmt.Fprintln(w, summary)
	return err
}

// buildTree links the actors to their parents and returns them in the
// report's order, first of each ID only. An actor whose parent is
// missing is made a root.
func buildTree(actors []messages.ActorReport) []*treeNode {
	nodes := make(map[string]*treeNode, len(actors))
	order := make([]*treeNode, 0, len(actors))
	for i := range actors {
		a := &actors[i]
		if _, dup := nodes[a.ID]; dup {
			continue
		}
		n := &treeNode{a: a}
		nodes[a.ID] = n
		order = append(order, n)
	}
	for _, n := range order {
		if n.a.Parent == "" {
			continue
		}
		parent, ok := nodes[n.a.Parent]
		if !ok || parent == n {
			// NOTE: a copy, so that the report itself stays as it was.
			a := *n.a
			a.Parent = ""
			n.a = &a
			continue
		}
		parent.children = append(parent.children, n)
	}
	for _, n := range order {
		sortChildren(n.children)
	}
	return order
}

// sortChildren puts the other actors first, in the report's order, then
// the checks by ID.
func sortChildren(c []*treeNode) {
	slices.SortStableFunc(c, func(x, y *treeNode) int {
		xc, yc := x.a.Kind == "check", y.a.Kind == "check"
		switch {
		case xc != yc && xc:
			return 1
		case xc != yc:
			return -1
		case !xc:
			return 0
		}
		return compareIDs(actorName(x.a), actorName(y.a))
	})
}

// compareIDs orders names that are numbers by value, before the names
// that are not, which go in lexical order.
func compareIDs(x, y string) int {
	xi, xerr := strconv.ParseUint(x, 10, 64)
	yi, yerr := strconv.ParseUint(y, 10, 64)
	switch {
	case xerr == nil && yerr == nil:
		return cmp.Compare(xi, yi)
	case xerr == nil:
		return -1
	case yerr == nil:
		return 1
	}
	return strings.Compare(x, y)
}

// node adds the rows of n and its subtree: n's line starts with lead,
// its children's with indent.
func (p *treePrinter) node(n *treeNode, lead, indent string) {
	p.visited[n] = true
	p.rows = append(p.rows, actorRow(lead+actorName(n.a), n.a))
	shown, hidden := p.split(n.children)
	for i, c := range shown {
		branch, more := "├── ", "│   "
		if i == len(shown)-1 && len(hidden) == 0 {
			branch, more = "└── ", "    "
		}
		p.node(c, indent+branch, indent+more)
	}
	if len(hidden) > 0 {
		p.rows = append(p.rows, p.collapsed(hidden, indent+"└── "))
	}
}

// split divides children into those shown and the checks left out.
func (p *treePrinter) split(children []*treeNode) (shown, hidden []*treeNode) {
	checks := 0
	for _, c := range children {
		if p.visited[c] {
			continue
		}
		if c.a.Kind == "check" && !p.all {
			checks++
			if checks > maxTreeChecks {
				hidden = append(hidden, c)
				continue
			}
		}
		shown = append(shown, c)
	}
	return shown, hidden
}

// collapsed returns the line that stands for the hidden checks and marks
// their subtrees visited; its mailbox and restarts are their totals.
func (p *treePrinter) collapsed(hidden []*treeNode, lead string) []string {
	var mailbox int64
	var restarts uint64
	var walk func(n *treeNode)
	walk = func(n *treeNode) {
		if p.visited[n] {
			return
		}
		p.visited[n] = true
		mailbox += n.a.Mailbox
		restarts += n.a.Restarts
		for _, c := range n.children {
			walk(c)
		}
	}
	for _, n := range hidden {
		walk(n)
	}
	p.hidden += len(hidden)
	return []string{
		fmt.Sprintf("%s... %d more checks", lead, len(hidden)),
		"check",
		strconv.FormatInt(mailbox, 10),
		strconv.FormatUint(restarts, 10),
	}
}

// actorRow is the table row of one actor, named label.
func actorRow(label string, a *messages.ActorReport) []string {
	return []string{label, a.Kind, strconv.FormatInt(a.Mailbox, 10),
		strconv.FormatUint(a.Restarts, 10)}
}

// actorName is the last element of a's path, or the whole path of a
// root.
func actorName(a *messages.ActorReport) string {
	if a.Parent != "" && strings.HasPrefix(a.ID, a.Parent+"/") {
		return a.ID[len(a.Parent)+1:]
	}
	return a.ID
}

// treeSummary totals the actors: "N actors, M messages waiting, R
// restarts".
func treeSummary(nodes []*treeNode) string {
	var mailbox int64
	var restarts uint64
	for _, n := range nodes {
		mailbox += n.a.Mailbox
		restarts += n.a.Restarts
	}
	return fmt.Sprintf("%s, %s waiting, %s", plural(len(nodes), "actor"),
		plural(int(mailbox), "message"), plural(int(restarts), "restart"))
}
