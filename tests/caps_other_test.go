//go:build !linux

package tests

import "errors"

// markUnavailable says why this process cannot set socket marks: SO_MARK
// is Linux's.
func markUnavailable() error {
	return errors.New("socket marks need Linux (SO_MARK)")
}
