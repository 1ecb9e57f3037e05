package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lbhealth/hcsupervisor/messages"
)

// TestFault checks what inject and clear send, and what they print of
// the server's answer, against golden files.
func TestFault(t *testing.T) {
	disabled := &messages.Error{Message: "fault injection is disabled; " +
		"start the server with -enable_fault_injection"}
	tests := []struct {
		golden string
		args   []string
		want   any // the request the server must receive
		answer any
	}{
		{"inject_check",
			[]string{"inject", "-id", "42", "-fault", "panic", "-count", "3"},
			&messages.InjectFault{ID: 42, Fault: messages.FaultPanic, Count: 3},
			&messages.Ack{Message: "injected 3× panic into check 42"}},
		{"inject_actor", []string{"inject", "-actor", "notifier"},
			&messages.InjectFault{Actor: "notifier",
				Fault: messages.FaultPanic, Count: 1},
			&messages.Ack{Message: "injected 1× panic into notifier"}},
		{"inject_refused",
			[]string{"inject", "-id", "42", "-fault", "hang"},
			&messages.InjectFault{ID: 42, Fault: messages.FaultHang, Count: 1},
			disabled},
		{"clear_all", []string{"clear"},
			&messages.ClearFaults{All: true},
			&messages.Ack{Message: "cleared the faults of every check"}},
		{"clear_check", []string{"clear", "-id", "0"},
			&messages.ClearFaults{ID: 0},
			&messages.Ack{Message: "cleared the faults of check 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			path := fakeSocket(t, func(p *peer) {
				p.send(&messages.Ready{})
				got := p.receive()
				if diff := cmp.Diff(tt.want, got); diff != "" {
					p.t.Errorf("request (-want +got):\n%s", diff)
				}
				// A batch on the way is not the answer.
				p.send(&messages.NotificationBatch{})
				p.send(tt.answer)
				p.waitClose()
			})
			args := append(tt.args, "-socket", path)
			got := runTest(t, args)
			checkGolden(t, tt.golden, got.String(), path, "SOCKET")
		})
	}
}
