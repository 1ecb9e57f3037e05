package main

import (
	"net/http"
	"testing"

	"github.com/lbhealth/hcsupervisor/messages"
)

// TestStatus checks hcctl status's output, table and JSON, with and
// without filters, against golden files.
func TestStatus(t *testing.T) {
	addr := fakeAPI(t, map[string]any{
		"GET /status":    testReport(),
		"GET /status/2":  checkByID(t, 2),
		"GET /status/99": textHandler(http.StatusNotFound, "no check with id 99"),
	})
	tests := []struct {
		golden string
		args   []string
		width  int
	}{
		{"status_table", nil, 80},
		{"status_table_wide", nil, 160},
		{"status_table_narrow", nil, 40},
		{"status_width_flag", []string{"-width", "140"}, 40},
		{"status_unhealthy", []string{"-state", "unhealthy"}, 80},
		{"status_http", []string{"-type", "http"}, 80},
		{"status_no_match", []string{"-state", "unknown", "-type", "tcp"}, 80},
		{"status_id", []string{"-id", "2"}, 80},
		{"status_id_filtered", []string{"-id", "2", "-state", "healthy"}, 80},
		{"status_id_missing", []string{"-id", "99"}, 80},
		{"status_json", []string{"-o", "json"}, 80},
		{"status_json_healthy_icmp",
			[]string{"-o", "json", "-state", "healthy", "-type", "icmp"}, 80},
		{"status_json_none", []string{"-o", "json", "-state", "unknown",
			"-type", "tcp"}, 80},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			args := append([]string{"status", "-addr", addr}, tt.args...)
			got := runTest(t, args, func(c *cli) { c.width = tt.width })
			checkGolden(t, tt.golden, got.String(), addr, "ADDR")
		})
	}
}

// TestStatusEmpty checks the output for a server without checks.
func TestStatusEmpty(t *testing.T) {
	addr := fakeAPI(t, map[string]any{
		"GET /status": &messages.StatusReport{Checks: []messages.CheckReport{}},
	})
	got := runTest(t, []string{"status", "-addr", addr})
	checkGolden(t, "status_empty", got.String(), addr, "ADDR")
}

// TestStatusErrors checks the errors for a listener that does not
// answer as a healthcheck-server does; TestAgainstRealServer has the
// server's own errors.
func TestStatusErrors(t *testing.T) {
	tests := []struct {
		golden string
		routes map[string]any
	}{
		{"status_not_ours", map[string]any{
			"GET /status": map[string]any{"statuses": []int{}},
		}},
		{"status_not_json", map[string]any{
			"GET /status": textHandler(http.StatusOK, "<html>hello</html>"),
		}},
		{"status_bad_field", map[string]any{
			"GET /status": map[string]any{"checks": "all of them"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			addr := fakeAPI(t, tt.routes)
			got := runTest(t, []string{"status", "-addr", addr})
			checkGolden(t, tt.golden, got.String(), addr, "ADDR")
		})
	}
}

// TestNoServer checks the error of each HTTP command when nobody listens
// at -addr.
func TestNoServer(t *testing.T) {
	addr := closedAddr(t)
	for _, cmd := range []string{"status", "tree", "health"} {
		t.Run(cmd, func(t *testing.T) {
			got := runTest(t, []string{cmd, "-addr", addr})
			checkGolden(t, "no_server_"+cmd, got.String(), addr, "ADDR")
		})
	}
}
