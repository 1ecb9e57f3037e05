package messages

import (
	"encoding/json"
	"fmt"
	"reflect"
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
}

// EncodeLine encodes one of the protocol's messages as a JSON line ending
// in "\n". It accepts *UpdateConfigs, *RequestStatus, *Shutdown, *Ready,
// *NotificationBatch, *StatusResponse and *Error.
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
			m.Notifications)
	case *StatusResponse:
		return encodeList(TypeStatusResponse, "statuses", m.Statuses)
	case *Error:
		env = envelope{Type: TypeError, Message: m.Message, ID: m.ID}
	default:
		return nil, fmt.Errorf("encode line: %w: %T", ErrUnknownType, msg)
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", env.Type, err)
	}
	return append(b, '\n'), nil
}

// encodeList encodes a line whose only field is a list, which is present
// even when empty.
func encodeList(typ, field string, list []CheckStatus) ([]byte, error) {
	type notifications struct {
		Type string        `json:"type"`
		List []CheckStatus `json:"notifications"`
	}
	type statuses struct {
		Type string        `json:"type"`
		List []CheckStatus `json:"statuses"`
	}
	var v any = notifications{typ, nonNil(list)}
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
		return &NotificationBatch{Notifications: env.Notifications}, nil
	case TypeStatusResponse:
		return &StatusResponse{Statuses: env.Statuses}, nil
	case TypeError:
		return &Error{Message: env.Message, ID: env.ID}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownType, env.Type)
}

// checkFields rejects fields that do not belong to the line's type.
func (e *envelope) checkFields() error {
	present := []struct {
		name string
		set  bool
		typ  string
	}{
		{"configs", e.Configs != nil, TypeUpdateConfigs},
		{"notifications", e.Notifications != nil, TypeNotificationBatch},
		{"statuses", e.Statuses != nil, TypeStatusResponse},
		{"message", e.Message != "", TypeError},
		{"id", e.ID != nil, TypeError},
	}
	for _, f := range present {
		if f.set && e.Type != f.typ {
			return fmt.Errorf("malformed line: field %s does not belong to type %q",
				f.name, e.Type)
		}
	}
	return nil
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
