package messages

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFaultLinesRoundTrip(t *testing.T) {
	for _, msg := range []any{
		&InjectFault{ID: 7, Fault: FaultPanic, Count: 50},
		&InjectFault{ID: 0, Fault: FaultFlap, Count: 1},
		&InjectFault{Actor: ActorNotifier, Fault: FaultPanic, Count: 2},
		&ClearFaults{ID: 7},
		&ClearFaults{All: true},
		&Ack{Message: "done"},
	} {
		line, err := EncodeLine(msg)
		if err != nil {
			t.Fatalf("EncodeLine(%#v): %v", msg, err)
		}
		got, err := DecodeLine(line)
		if err != nil {
			t.Fatalf("DecodeLine(%s): %v", line, err)
		}
		if diff := cmp.Diff(msg, got); diff != "" {
			t.Errorf("round trip of %s (-want +got):\n%s", line, diff)
		}
	}
}

func TestDecodeInjectFault(t *testing.T) {
	got, err := DecodeLine([]byte(`{"type":"inject_fault","id":3,"fault":"hang"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &InjectFault{ID: 3, Fault: FaultHang, Count: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("count defaults to 1 (-want +got):\n%s", diff)
	}
}

func TestDecodeInjectFaultRejects(t *testing.T) {
	tests := []struct {
		name, line, want string
	}{
		{"no target", `{"type":"inject_fault","fault":"panic"}`, "id or actor: missing"},
		{"unknown fault", `{"type":"inject_fault","id":1,"fault":"melt"}`, "fault: unknown"},
		{"zero count", `{"type":"inject_fault","id":1,"fault":"error","count":0}`,
			"count: must be"},
		{"huge count", `{"type":"inject_fault","id":1,"fault":"error","count":2000000}`,
			"count: must be"},
		{"unknown actor", `{"type":"inject_fault","actor":"db","fault":"panic"}`,
			"actor: unknown"},
		{"actor with hang", `{"type":"inject_fault","actor":"proxy","fault":"hang"}`,
			"accepts only panic"},
		{"actor and id", `{"type":"inject_fault","actor":"proxy","id":4,"fault":"panic"}`,
			"id: not allowed"},
		{"fault on another type", `{"type":"clear_faults","fault":"panic"}`,
			"does not belong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := DecodeLine([]byte(tt.line))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeLine = %#v, %v; want an error containing %q",
					msg, err, tt.want)
			}
		})
	}
}

func TestInjectFaultAck(t *testing.T) {
	tests := []struct {
		f      InjectFault
		queued int
		want   string
	}{
		{InjectFault{ID: 7, Fault: FaultHang, Count: 3}, 3, "injected 3× hang into check 7"},
		{InjectFault{Actor: ActorProxy, Fault: FaultPanic, Count: 1}, 1,
			"injected 1× panic into proxy"},
		{InjectFault{Actor: ActorBridge, Fault: FaultPanic, Count: 500},
			MaxSingletonCrashes, "injected 100× panic into bridge " +
				"(500 asked; the rest are over the bound)"},
	}
	for _, tt := range tests {
		if got := tt.f.Ack(tt.queued).Message; got != tt.want {
			t.Errorf("Ack(%d) of %+v = %q, want %q", tt.queued, tt.f, got, tt.want)
		}
	}
	if got := (&InjectFault{Count: 500}).SingletonCrashes(); got != MaxSingletonCrashes {
		t.Errorf("SingletonCrashes of 500 = %d, want %d", got, MaxSingletonCrashes)
	}
}
