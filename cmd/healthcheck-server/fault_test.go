package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestFaultSubcommands runs inject and clear against a real server, and
// checks their usage errors.
func TestFaultSubcommands(t *testing.T) {
	backend := startPingBackend(t)
	_, socket, c := startSocketChild(t, "-enable_fault_injection")
	c.configure(t, 7, fmt.Sprintf(`{"id":7,"interval":"1h",`+
		`"checker_type":"tcp","ip":"127.0.0.1","port":%d}`, backend.port()))

	tests := []struct {
		name       string
		cmd        string
		args       []string
		wantStatus int
		// want is in stdout when the status is 0, else in stderr.
		want string
	}{
		{"inject into a check", "inject", []string{"-id", "7", "-fault", "error",
			"-count", "2"}, 0, "2× error into check 7"},
		{"inject into a check that is not there", "inject",
			[]string{"-id", "8"}, 1, "8"},
		{"crash a singleton", "inject", []string{"-actor", "notifier"}, 0,
			"into notifier"},
		{"clear a check", "clear", []string{"-id", "7"}, 0, "7"},
		{"clear all", "clear", nil, 0, "cleared"},
		{"neither id nor actor", "inject", nil, 2, "exactly one of -id and -actor"},
		{"both id and actor", "inject", []string{"-id", "7", "-actor", "proxy"},
			2, "exactly one of -id and -actor"},
		{"an actor with another fault", "inject",
			[]string{"-actor", "proxy", "-fault", "hang"}, 2, "-fault hang"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"-socket", socket}, tt.args...)
			got := runFault(tt.cmd, args, &stdout, &stderr)
			out := stdout.String()
			if tt.wantStatus != 0 {
				out = stderr.String()
			}
			if got != tt.wantStatus || !strings.Contains(out, tt.want) {
				t.Errorf("%s %q: status %d, stdout %q, stderr %q; want %d and %q",
					tt.cmd, tt.args, got, stdout.String(), stderr.String(),
					tt.wantStatus, tt.want)
			}
		})
	}
}
