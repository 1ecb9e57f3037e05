package messages

import "errors"

var (
	// ErrUnknownType is returned by DecodeLine for a line whose "type" field
	// names no message of the protocol.
	ErrUnknownType = errors.New("unknown message type")

	// ErrMissingType is returned by DecodeLine for a line without a "type"
	// field.
	ErrMissingType = errors.New("missing message type")

	// ErrInvalidConfig wraps every reason a single config is rejected, so
	// callers can tell a bad config from a bad line with errors.Is.
	ErrInvalidConfig = errors.New("invalid config")
)
