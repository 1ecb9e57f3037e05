package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lbhealth/hcsupervisor/messages"
)

func TestAgo(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Minute, "0s ago"},
		{0, "0s ago"},
		{999 * time.Millisecond, "0s ago"},
		{59 * time.Second, "59s ago"},
		{3*time.Minute + 12*time.Second + 800*time.Millisecond, "3m12s ago"},
		{time.Hour, "1h0m ago"},
		{23*time.Hour + 59*time.Minute + 59*time.Second, "23h59m ago"},
		{49 * time.Hour, "2d1h ago"},
	}
	for _, tt := range tests {
		if got := ago(tt.d); got != tt.want {
			t.Errorf("ago(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{850400 * time.Nanosecond, "850µs"},
		{2354 * time.Microsecond, "2.35ms"},
		{1204400 * time.Microsecond, "1.204s"},
		{90*time.Second + 400*time.Millisecond, "1m30s"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"healthy", 10, "healthy"},
		{"healthy", 7, "healthy"},
		{"healthy", 6, "healt…"},
		{"µµµµ", 3, "µµ…"},
		{"abc", 0, ""},
	}
	for _, tt := range tests {
		if got := truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.s, tt.n, got,
				tt.want)
		}
	}
}

func TestSanitize(t *testing.T) {
	if got, want := sanitize("a\tb\nc\x1b[31md"), "a b c [31md"; got != want {
		t.Errorf("sanitize = %q, want %q", got, want)
	}
}

// TestRenderStatusWidth checks that the table fits any width that
// leaves MESSAGE its minimum, and that a message is never cut shorter.
func TestRenderStatusWidth(t *testing.T) {
	checks := testReport().Checks
	for _, width := range []int{40, 80, 100, 120, 140, 200} {
		var out bytes.Buffer
		if err := renderStatus(&out, checks, checks, testNow,
			width); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		header := lines[0]
		messageAt := utf8.RuneCountInString(
			header[:strings.Index(header, "MESSAGE")])
		limit := max(width, messageAt+minMessage)
		for _, l := range lines[:len(lines)-1] {
			if n := utf8.RuneCountInString(l); n > limit {
				t.Errorf("width %d: line of %d runes, want at most %d:\n%s",
					width, n, limit, l)
			}
		}
	}
}

// TestWatchLine checks the layout of watch's lines.
func TestWatchLine(t *testing.T) {
	at := time.Date(2026, 12, 3, 18, 45, 55, 940728755, time.UTC)
	healthy, unhealthy := messages.StateHealthy, messages.StateUnhealthy
	cs := messages.CheckStatus{ID: 42, Status: messages.Status{
		State: unhealthy, Message: "refused\n", LastCheck: at,
		Duration: 2350 * time.Microsecond,
	}}
	tests := []struct {
		name  string
		from  *messages.State
		color bool
		want  string
	}{
		{"first", nil, false,
			"18:45:55.940    42  -> unhealthy              2.35ms  refused"},
		{"change", &healthy, false,
			"18:45:55.940    42  healthy -> unhealthy      2.35ms  refused"},
		{"repeat", &unhealthy, false,
			"18:45:55.940    42  = unhealthy               2.35ms  refused"},
		{"color", &healthy, true,
			"18:45:55.940    42  \x1b[32mhealthy\x1b[0m -> " +
				"\x1b[31munhealthy\x1b[0m      2.35ms  refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := watchLine(at, cs, 4, tt.from, tt.color)
			if got != tt.want {
				t.Errorf("watchLine =\n%q, want\n%q", got, tt.want)
			}
		})
	}
}
