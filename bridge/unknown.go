package bridge

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"sync"
)

// ErrUnknownCheckers is returned by Healthchecks when a reply names more
// checker types this package does not know than it has stand-ins for; see
// standIns.
var ErrUnknownCheckers = errors.New("too many unknown checker types")

// unknownChecker stands in for a checker type that the Engine names and
// this package does not know, such as one a newer Seesaw added. Without a
// type registered under its name, gob fails the whole reply at the first
// such check; with one, that check alone is rejected by its ID. It has no
// fields, so gob decodes any checker into it by skipping every field.
//
// The type parameter only makes the instances distinct types: gob
// registers each type under one name.
type unknownChecker[T any] struct{}

func (*unknownChecker[T]) target() *Target { return nil }

// standIns hands out unknownChecker types to the names an Engine sends
// that no type is registered under.
//
// NOTE: gob's registry is global to the process and has no way to forget
// a name, so the names learnt here outlive any one EngineClient, and the
// pool is bounded: an Engine naming more unknown types than the pool
// holds is not one this server can serve.
var standIns = struct {
	sync.Mutex
	free  []Checker
	names map[reflect.Type]string
}{
	free: []Checker{
		&unknownChecker[[0]byte]{}, &unknownChecker[[1]byte]{},
		&unknownChecker[[2]byte]{}, &unknownChecker[[3]byte]{},
		&unknownChecker[[4]byte]{}, &unknownChecker[[5]byte]{},
		&unknownChecker[[6]byte]{}, &unknownChecker[[7]byte]{},
	},
	names: make(map[reflect.Type]string),
}

// maxLearnRounds bounds the Healthchecks calls of one fetch: one for each
// of the 8 stand-ins in standIns, which learns one name, and the last.
const maxLearnRounds = 9

// learnCheckerName registers a stand-in type under name and reports
// whether it did: learnt is false when name has one already. It returns
// an error wrapping ErrUnknownCheckers when the pool is empty.
func learnCheckerName(name string) (learnt bool, err error) {
	standIns.Lock()
	defer standIns.Unlock()
	for _, known := range standIns.names {
		if known == name {
			return false, nil
		}
	}
	if len(standIns.free) == 0 {
		return false, fmt.Errorf("%w: %q would be the %d-th",
			ErrUnknownCheckers, name, len(standIns.names)+1)
	}
	ch := standIns.free[0]
	if err := registerName(name, ch); err != nil {
		return false, err
	}
	standIns.free = standIns.free[1:]
	standIns.names[reflect.TypeOf(ch)] = name
	return true, nil
}

// unknownCheckerName returns the name the Engine gave ch's type when ch is
// a stand-in.
func unknownCheckerName(ch Checker) (string, bool) {
	standIns.Lock()
	defer standIns.Unlock()
	name, ok := standIns.names[reflect.TypeOf(ch)]
	return name, ok
}

// unregisteredRE matches gob's error for an interface value whose name no
// type is registered under; net/rpc passes it on as text only.
var unregisteredRE = regexp.MustCompile(
	`gob: name not registered for interface: ("(?:[^"\\]|\\.)*")`)

// unregisteredName returns the type name in err when err is gob's error
// for a name no type is registered under, met decoding the Engine's reply.
// The same text sent by the Engine, an *EngineError, is the Engine's own
// failure: no name learnt here would mend it.
func unregisteredName(err error) (string, bool) {
	var ee *EngineError
	if err == nil || errors.As(err, &ee) {
		return "", false
	}
	m := unregisteredRE.FindStringSubmatch(err.Error())
	if m == nil {
		return "", false
	}
	name, err := strconv.Unquote(m[1])
	return name, err == nil
}
