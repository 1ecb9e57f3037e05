package messages

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestStateNames(t *testing.T) {
	tests := []struct {
		state State
		name  string
	}{
		{state: StateUnknown, name: "unknown"},
		{state: StateUnhealthy, name: "unhealthy"},
		{state: StateHealthy, name: "healthy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.state.String(); got != tt.name {
				t.Errorf("State(%d).String() = %q, want %q", int(tt.state), got, tt.name)
			}

			b, err := tt.state.MarshalText()
			if err != nil || string(b) != tt.name {
				t.Errorf("State(%d).MarshalText() = %q, %v; want %q, nil",
					int(tt.state), b, err, tt.name)
			}

			got, err := ParseState(tt.name)
			if err != nil || got != tt.state {
				t.Errorf("ParseState(%q) = %v, %v; want %v, nil", tt.name, got, err, tt.state)
			}

			var u State = 99
			if err := u.UnmarshalText([]byte(tt.name)); err != nil || u != tt.state {
				t.Errorf("UnmarshalText(%q) = %v, state %d; want nil, state %d",
					tt.name, err, int(u), int(tt.state))
			}
		})
	}
}

// TestStateSeesawValues pins the numbers the Engine bridge puts on the
// wire unchanged.
func TestStateSeesawValues(t *testing.T) {
	got := []int{int(StateUnknown), int(StateUnhealthy), int(StateHealthy)}
	if diff := cmp.Diff([]int{0, 1, 2}, got); diff != "" {
		t.Errorf("state values mismatch (-want +got):\n%s", diff)
	}
}

func TestInvalidState(t *testing.T) {
	tests := []struct {
		state State
		want  string
	}{
		{state: -1, want: "state(-1)"},
		{state: 3, want: "state(3)"},
		{state: 1 << 20, want: "state(1048576)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.state.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if b, err := tt.state.MarshalText(); err == nil {
				t.Errorf("MarshalText() = %q, want an error", b)
			}
		})
	}
}

func TestParseStateRejects(t *testing.T) {
	for _, name := range []string{
		"", "Healthy", "HEALTHY", "up", "down", "0", "2", " healthy", "state(3)",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseState(name)
			if err == nil {
				t.Fatalf("ParseState(%q) = %v, want an error", name, got)
			}
			if got != StateUnknown {
				t.Errorf("ParseState(%q) = %v with its error, want %v",
					name, got, StateUnknown)
			}
			if !strings.Contains(err.Error(), "unknown state") {
				t.Errorf("ParseState(%q) error = %q, want it to say unknown state",
					name, err)
			}

			s := StateHealthy
			if err := s.UnmarshalText([]byte(name)); err == nil {
				t.Errorf("UnmarshalText(%q) = nil, want an error", name)
			}
			if s != StateHealthy {
				t.Errorf("failed UnmarshalText(%q) changed the state to %v", name, s)
			}
		})
	}
}

func TestStatusMarshalJSON(t *testing.T) {
	tests := []struct {
		name   string
		status Status
		want   string
	}{
		{
			name:   "zero",
			status: Status{},
			want: `{"state":"unknown","message":"","duration":"0s",` +
				`"successes":0,"failures":0,"restarts":0}`,
		},
		{
			name: "every field",
			status: Status{
				State:     StateHealthy,
				Message:   "HTTP 200",
				LastCheck: time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC),
				Duration:  1500 * time.Microsecond,
				Successes: 7,
				Failures:  1,
				Restarts:  2,

				Unconfirmed: true,
			},
			want: `{"state":"healthy","message":"HTTP 200",` +
				`"last_check":"2024-03-01T12:30:45.123456789Z",` +
				`"duration":"1.5ms","successes":7,"failures":1,"restarts":2,` +
				`"unconfirmed":true}`,
		},
		{
			name: "offset kept",
			status: Status{
				State:     StateUnhealthy,
				LastCheck: time.Date(2024, 3, 1, 12, 30, 45, 1000, time.FixedZone("", 5*3600+1800)),
				Duration:  time.Hour,
			},
			want: `{"state":"unhealthy","message":"",` +
				`"last_check":"2024-03-01T12:30:45.000001+05:30",` +
				`"duration":"1h0m0s","successes":0,"failures":0,"restarts":0}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.status)
			if err != nil {
				t.Fatalf("json.Marshal error: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("json.Marshal(status)\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestStatusJSONRoundTrip(t *testing.T) {
	for _, cs := range sampleStatuses() {
		t.Run(fmt.Sprintf("id %d", cs.ID), func(t *testing.T) {
			b, err := json.Marshal(cs.Status)
			if err != nil {
				t.Fatalf("json.Marshal error: %v", err)
			}
			var got Status
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("json.Unmarshal(%s) error: %v", b, err)
			}
			if diff := cmp.Diff(cs.Status, got); diff != "" {
				t.Errorf("status round trip mismatch (-want +got):\n%s", diff)
			}
			if !got.LastCheck.Equal(cs.Status.LastCheck) ||
				got.LastCheck.Nanosecond() != cs.Status.LastCheck.Nanosecond() {
				t.Errorf("last_check = %v, want %v", got.LastCheck, cs.Status.LastCheck)
			}
		})
	}
}

func TestStatusUnmarshalJSONIgnoresNewFields(t *testing.T) {
	var s Status
	if err := json.Unmarshal([]byte(`{"state":"healthy","added_later":1}`), &s); err != nil {
		t.Fatalf("a field from a newer server: %v", err)
	}
	if s.State != StateHealthy {
		t.Errorf("state = %v, want healthy", s.State)
	}
}

func TestStatusUnmarshalJSONRejects(t *testing.T) {
	tests := []struct {
		name string
		json string
		want string
	}{
		{name: "unknown state", json: `{"state":"up"}`, want: `unknown state "up"`},
		{name: "state in upper case", json: `{"state":"HEALTHY"}`, want: "unknown state"},
		{name: "empty state", json: `{"state":""}`, want: "unknown state"},
		{name: "state as a number", json: `{"state":2}`, want: "state"},
		{name: "last_check without zone", json: `{"last_check":"2024-03-01T12:30:45"}`,
			want: "last_check:"},
		{name: "last_check with space", json: `{"last_check":"2024-03-01 12:30:45Z"}`,
			want: "last_check:"},
		{name: "last_check as Unix time", json: `{"last_check":"1709296245"}`,
			want: "last_check:"},
		{name: "last_check as a number", json: `{"last_check":1709296245}`,
			want: "last_check"},
		{name: "last_check out of range", json: `{"last_check":"2024-13-01T00:00:00Z"}`,
			want: "last_check:"},
		{name: "duration without unit", json: `{"duration":"5"}`, want: "duration:"},
		{name: "duration in words", json: `{"duration":"5 seconds"}`, want: "duration:"},
		{name: "duration as a number", json: `{"duration":5000000}`, want: "duration"},
		{name: "negative counter", json: `{"successes":-1}`, want: "successes"},
		{name: "fractional counter", json: `{"restarts":1.5}`, want: "restarts"},
		{name: "not an object", json: `"healthy"`, want: "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Status{Message: "untouched"}
			err := json.Unmarshal([]byte(tt.json), &s)
			if err == nil {
				t.Fatalf("json.Unmarshal(%s) = %+v, want an error", tt.json, s)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("json.Unmarshal(%s) error = %q, want it to contain %q",
					tt.json, err, tt.want)
			}
			if s.Message != "untouched" {
				t.Errorf("failed json.Unmarshal(%s) changed the status to %+v", tt.json, s)
			}
		})
	}
}

func TestStatusUnmarshalJSONLenient(t *testing.T) {
	tests := []struct {
		name string
		json string
		want Status
	}{
		{name: "empty object", json: `{}`, want: Status{}},
		{name: "empty last_check and duration",
			json: `{"state":"healthy","last_check":"","duration":""}`,
			want: Status{State: StateHealthy}},
		{
			name: "last_check without fraction",
			json: `{"last_check":"2024-03-01T12:30:45Z"}`,
			want: Status{LastCheck: time.Date(2024, 3, 1, 12, 30, 45, 0, time.UTC)},
		},
		{
			name: "negative duration",
			json: `{"duration":"-1.5s"}`,
			want: Status{Duration: -1500 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Status
			if err := json.Unmarshal([]byte(tt.json), &got); err != nil {
				t.Fatalf("json.Unmarshal(%s) error: %v", tt.json, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("json.Unmarshal(%s) mismatch (-want +got):\n%s", tt.json, diff)
			}
		})
	}
}
