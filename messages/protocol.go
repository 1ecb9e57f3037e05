package messages

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
)

// The values of the "type" field of a protocol line.
const (
	TypeUpdateConfigs     = "update_configs"
	TypeRequestStatus     = "request_status"
	TypeShutdown          = "shutdown"
	TypeReady             = "ready"
	TypeNotificationBatch = "notification_batch"
	TypeStatusResponse    = "status_response"
	TypeError             = "error"
	TypeInjectFault       = "inject_fault"
	TypeClearFaults       = "clear_faults"
	TypeAck               = "ack"
)

// envelope is the union of every line's fields; which ones may be present
// depends on the type.
type envelope struct {
	Type          string          `json:"type"`
	Configs       json.RawMessage `json:"configs,omitempty"`
	Notifications []CheckStatus   `json:"notifications,omitempty"`
	Statuses      []CheckStatus   `json:"statuses,omitempty"`
	Message       string          `json:"message,omitempty"`
	ID            *uint64         `json:"id,omitempty"`
	Actor         string          `json:"actor,omitempty"`
	Fault         Fault           `json:"fault,omitempty"`
	Count         *int            `json:"count,omitempty"`
	Periodic      bool            `json:"periodic,omitempty"`
}

// EncodeLine encodes one of the protocol's messages as a JSON line ending
// in "\n". It accepts *UpdateConfigs, *RequestStatus, *Shutdown, *Ready,
// *NotificationBatch, *StatusResponse, *Error, *InjectFault, *ClearFaults
// and *Ack.
func EncodeLine(msg any) ([]byte, error) {
	if v := reflect.ValueOf(msg); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, fmt.Errorf("encode line: nil %T", msg)
	}
	var env envelope
	switch m := msg.(type) {
	case *UpdateConfigs:
		configs, err := json.Marshal(nonNil(m.Configs))
		if err != nil {
			return nil, err
		}
		env = envelope{Type: TypeUpdateConfigs, Configs: configs}
	case *RequestStatus:
		env.Type = TypeRequestStatus
	case *Shutdown:
		env.Type = TypeShutdown
	case *Ready:
		env.Type = TypeReady
	case *NotificationBatch:
		return encodeList(TypeNotificationBatch, "notifications",
			m.Notifications, m.Periodic)
	case *StatusResponse:
		return encodeList(TypeStatusResponse, "statuses", m.Statuses, false)
	case *Error:
		env = envelope{Type: TypeError, Message: m.Message, ID: m.ID}
	case *InjectFault:
		env = envelope{Type: TypeInjectFault, Actor: m.Actor, Fault: m.Fault,
			Count: &m.Count}
		if m.Actor == "" {
			env.ID = &m.ID
		}
	case *ClearFaults:
		env.Type = TypeClearFaults
		if !m.All {
			env.ID = &m.ID
		}
	case *Ack:
		env = envelope{Type: TypeAck, Message: m.Message}
	default:
		return nil, fmt.Errorf("encode line: %w: %T", ErrUnknownType, msg)
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", env.Type, err)
	}
	return append(b, '\n'), nil
}

// encodeList encodes a line whose field is a list, which is present even
// when empty; a notification batch also carries its periodic mark.
func encodeList(typ, field string, list []CheckStatus, periodic bool) ([]byte, error) {
	type notifications struct {
		Type     string        `json:"type"`
		List     []CheckStatus `json:"notifications"`
		Periodic bool          `json:"periodic,omitempty"`
	}
	type statuses struct {
		Type string        `json:"type"`
		List []CheckStatus `json:"statuses"`
	}
	var v any = notifications{typ, nonNil(list), periodic}
	if field == "statuses" {
		v = statuses{typ, nonNil(list)}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	return append(b, '\n'), nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// DecodeLine decodes one protocol line (with or without its "\n") into the
// message it carries, one of the types EncodeLine accepts. For
// update_configs the configs that fail to decode or validate are returned
// in UpdateConfigs.Rejected and the rest are kept: only an error in the
// line itself fails the whole line.
func DecodeLine(line []byte) (any, error) {
	var env envelope
	if err := strictUnmarshal(line, &env); err != nil {
		return nil, fmt.Errorf("malformed line: %s", cleanJSONError(err))
	}
	if err := env.checkFields(); err != nil {
		return nil, err
	}
	switch env.Type {
	case "":
		return nil, ErrMissingType
	case TypeUpdateConfigs:
		u, err := decodeUpdate(env.Configs)
		if err != nil {
			return nil, err
		}
		return u, nil
	case TypeRequestStatus:
		return &RequestStatus{}, nil
	case TypeShutdown:
		return &Shutdown{}, nil
	case TypeReady:
		return &Ready{}, nil
	case TypeNotificationBatch:
		return &NotificationBatch{Notifications: env.Notifications,
			Periodic: env.Periodic}, nil
	case TypeStatusResponse:
		return &StatusResponse{Statuses: env.Statuses}, nil
	case TypeError:
		return &Error{Message: env.Message, ID: env.ID}, nil
	case TypeInjectFault:
		return decodeInjectFault(&env)
	case TypeClearFaults:
		if env.ID == nil {
			return &ClearFaults{All: true}, nil
		}
		return &ClearFaults{ID: *env.ID}, nil
	case TypeAck:
		return &Ack{Message: env.Message}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownType, env.Type)
}

// checkFields rejects fields that do not belong to the line's type.
func (e *envelope) checkFields() error {
	present := []struct {
		name  string
		set   bool
		types []string
	}{
		{"configs", e.Configs != nil, []string{TypeUpdateConfigs}},
		{"notifications", e.Notifications != nil, []string{TypeNotificationBatch}},
		{"statuses", e.Statuses != nil, []string{TypeStatusResponse}},
		{"message", e.Message != "", []string{TypeError, TypeAck}},
		{"id", e.ID != nil, []string{TypeError, TypeInjectFault, TypeClearFaults}},
		{"actor", e.Actor != "", []string{TypeInjectFault}},
		{"fault", e.Fault != "", []string{TypeInjectFault}},
		{"count", e.Count != nil, []string{TypeInjectFault}},
		{"periodic", e.Periodic, []string{TypeNotificationBatch}},
	}
	for _, f := range present {
		if f.set && !slices.Contains(f.types, e.Type) {
			return fmt.Errorf("malformed line: field %s does not belong to type %q",
				f.name, e.Type)
		}
	}
	return nil
}

func decodeInjectFault(env *envelope) (*InjectFault, error) {
	f := &InjectFault{Actor: env.Actor, Fault: env.Fault, Count: 1}
	if env.Count != nil {
		f.Count = *env.Count
	}
	switch {
	case env.ID != nil:
		f.ID = *env.ID
	case env.Actor == "":
		return nil, fmt.Errorf("%s: id or actor: missing", TypeInjectFault)
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", TypeInjectFault, err)
	}
	return f, nil
}

func decodeUpdate(raw json.RawMessage) (*UpdateConfigs, error) {
	if raw == nil || string(raw) == "null" {
		return nil, fmt.Errorf("%s: configs: missing", TypeUpdateConfigs)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(raw, &raws); err != nil {
		return nil, fmt.Errorf("%s: configs: must be a list", TypeUpdateConfigs)
	}
	configs, rejected := ParseConfigs(raws)
	return &UpdateConfigs{Configs: configs, Rejected: rejected}, nil
}
