package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/bridge"
)

// TestFormatNotification checks the printed line of a notification.
func TestFormatNotification(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	tests := []struct {
		name  string
		n     bridge.Notification
		known bool
		want  string
	}{{
		name:  "healthy",
		n:     bridge.Notification{Id: 7, Status: bridge.Status{State: 2, Message: "ok"}},
		known: true,
		want:  `2025-01-02T03:04:05.600Z id=7 state=healthy message="ok"`,
	}, {
		name: "unknown ID",
		n: bridge.Notification{Id: 1 << 48,
			Status: bridge.Status{State: 1, Message: "dial tcp: \"refused\""}},
		want: `2025-01-02T03:04:05.600Z id=281474976710656 state=unhealthy ` +
			`message="dial tcp: \"refused\"" unknown_id=true`,
	}, {
		name:  "odd state",
		n:     bridge.Notification{Id: 1, Status: bridge.Status{State: 9}},
		known: true,
		want:  `2025-01-02T03:04:05.600Z id=1 state=state(9) message=""`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatNotification(at, tt.n, tt.known); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestPrinterQuiet checks that a quiet printer prints nothing.
func TestPrinterQuiet(t *testing.T) {
	var b bytes.Buffer
	newPrinter(&b, true).print(bridge.Notification{Id: 1}, true)
	if b.Len() != 0 {
		t.Errorf("quiet printer printed %q", &b)
	}
}
