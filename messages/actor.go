package messages

import "time"

// UpdateConfigs is the complete desired set of checks: the manager starts
// the checks it names, updates the ones it runs, and stops the rest.
type UpdateConfigs struct {
	// Configs are the valid configs, at most one per ID.
	Configs []Config
	// Rejected lists the configs of the update that failed to parse or
	// validate. A rejected config whose ID names a running check leaves
	// that check running as it was. Rejected is not sent on the socket.
	Rejected []*ConfigError
}

// ConfigsApplied answers an UpdateConfigs that has a sender, once the
// manager has applied it. Rejected lists the configs the manager rejected
// itself, such as those over its bound on checks, each naming its ID.
// It is not sent on the socket.
type ConfigsApplied struct {
	Rejected []*ConfigError
}

// RequestStatus asks the manager for the status of every check. The
// manager responds to the sender with a StatusResponse.
type RequestStatus struct{}

// Shutdown asks the server to stop gracefully.
type Shutdown struct{}

// Ready is the first line the server sends on every new connection.
type Ready struct{}

// CheckStatus is the status of the check with the given ID.
type CheckStatus struct {
	ID     uint64 `json:"id"`
	Status Status `json:"status"`
}

// NotificationBatch carries state changes and periodic full statuses from
// the notifier to its sink, at most one per check ID, oldest first.
type NotificationBatch struct {
	Notifications []CheckStatus `json:"notifications"`
	// Periodic marks a batch of the periodic full status: it holds no
	// state change, so a sink with a backlog may send any batch without
	// the mark before it.
	Periodic bool `json:"periodic,omitempty"`
}

// StatusResponse answers RequestStatus with every check's status, ordered by
// ID.
type StatusResponse struct {
	Statuses []CheckStatus `json:"statuses"`
}

// Error reports a request the server could not carry out. ID is set when
// the error is about one config.
type Error struct {
	Message string  `json:"message"`
	ID      *uint64 `json:"id,omitempty"`
}

// StatusErrorPrefix starts the Message of the Error the server sends a
// socket client in place of a StatusResponse, when its manager did not
// answer the RequestStatus: the Error that fails a client's request
// starts with the request's type and ": ". An Error names no request,
// so a client tells this one from the others by the prefix.
const StatusErrorPrefix = TypeRequestStatus + ": "

// ErrorFor returns the Error reply for a rejected config.
func ErrorFor(ce *ConfigError) *Error {
	e := &Error{Message: ce.Error()}
	if ce.HasID {
		id := ce.ID
		e.ID = &id
	}
	return e
}

// ProbeResult is the outcome of one probe. A failing backend is a result
// with Success false, not an error.
type ProbeResult struct {
	// Success is true when the backend answered as configured.
	Success bool
	// Message describes the outcome for people.
	Message string
	// Start is when the probe began; Duration is how long it took.
	Start    time.Time
	Duration time.Duration
}
