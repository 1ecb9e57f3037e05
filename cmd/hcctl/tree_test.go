package main

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/lbhealth/hcsupervisor/messages"
)

// testTree is the /tree of the tests: the server's tree with 13 checks,
// listed out of order, some of them busy or restarted.
func testTree() *messages.TreeReport {
	actors := []messages.ActorReport{
		{ID: "hc", Kind: "root"},
		{ID: "hc/manager", Parent: "hc", Kind: "manager", Mailbox: 3},
	}
	for _, id := range []int{12, 3, 1, 2, 10, 11, 4, 5, 6, 7, 8, 9, 13} {
		a := messages.ActorReport{
			ID:     fmt.Sprintf("hc/manager/%d", id),
			Parent: "hc/manager", Kind: "check",
		}
		switch id {
		case 2:
			a.Restarts = 4
		case 12:
			a.Mailbox, a.Restarts = 2, 1
		case 13:
			a.Restarts = 3
		}
		actors = append(actors, a)
	}
	return &messages.TreeReport{Actors: append(actors,
		messages.ActorReport{ID: "hc/manager/notifier", Parent: "hc/manager",
			Kind: "notifier", Mailbox: 1},
		messages.ActorReport{ID: "hc/proxy", Parent: "hc", Kind: "proxy"},
		messages.ActorReport{ID: "hc/bridge", Parent: "hc", Kind: "bridge",
			Restarts: 1},
	)}
}

// TestTree checks hcctl tree's output against golden files.
func TestTree(t *testing.T) {
	addr := fakeAPI(t, map[string]any{"GET /tree": testTree()})
	tests := []struct {
		golden string
		args   []string
	}{
		{"tree", nil},
		{"tree_all", []string{"-all"}},
		{"tree_json", []string{"-o", "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			args := append([]string{"tree", "-addr", addr}, tt.args...)
			got := runTest(t, args)
			checkGolden(t, tt.golden, got.String(), addr, "ADDR")
		})
	}
}

// TestRenderTreeBroken checks that actors with a missing parent, a
// duplicate ID or a parent cycle are all shown, once.
func TestRenderTreeBroken(t *testing.T) {
	rep := &messages.TreeReport{Actors: []messages.ActorReport{
		{ID: "hc", Kind: "root"},
		{ID: "hc/proxy", Parent: "hc", Kind: "proxy"},
		{ID: "hc/proxy", Parent: "hc", Kind: "proxy", Restarts: 9},
		{ID: "gone/manager", Parent: "gone", Kind: "manager"},
		{ID: "gone/manager/7", Parent: "gone/manager", Kind: "check"},
		{ID: "a", Parent: "b", Kind: "link"},
		{ID: "b", Parent: "a", Kind: "link"},
		{ID: "self", Parent: "self", Kind: "root"},
	}}
	var out bytes.Buffer
	if err := renderTree(&out, rep, false); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "tree_broken", out.String())
}

// TestRenderTreeEmpty checks the output for an empty tree.
func TestRenderTreeEmpty(t *testing.T) {
	var out bytes.Buffer
	if err := renderTree(&out, &messages.TreeReport{}, false); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "0 actors, 0 messages waiting, "+
		"0 restarts\n"; got != want {
		t.Errorf("renderTree = %q, want %q", got, want)
	}
}
