package actors

import (
	"fmt"

	"github.com/rs/zerolog"
)

// unexpected logs, at warn, the first message of each type an actor did
// not expect, and counts the rest silently, so a stream of them cannot
// flood the log.
type unexpected struct {
	seen map[string]int
}

func (u *unexpected) log(log zerolog.Logger, msg any) {
	name := fmt.Sprintf("%T", msg)
	if u.seen == nil {
		u.seen = make(map[string]int)
	}
	u.seen[name]++
	if u.seen[name] == 1 {
		log.Warn().Str("type", name).Msg("unexpected_message")
	}
}
