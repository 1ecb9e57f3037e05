package actors

import "errors"

var (
	// ErrTooManyChecks is the reason of a config rejected because the
	// manager runs as many checks as ManagerConfig.MaxChecks allows.
	ErrTooManyChecks = errors.New("too many checks")

	// errLineTooLong is the reply to a socket client's line longer than
	// ProxyConfig.MaxLineBytes.
	errLineTooLong = errors.New("line too long")
)
