package actors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

// NewLogger returns the one logger of a process: JSON lines on w, or with
// format "console" lines for people (coloured only on a terminal), at the
// named level (debug, info, warn or error).
func NewLogger(w io.Writer, format, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("-log_level: unknown level %q", level)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{
			Out: w, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w),
		}
	default:
		return zerolog.Logger{}, fmt.Errorf(
			"-log_format: want json or console, got %q", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// NewSystem returns an actor system that logs through logger, with the
// library's own lines tagged lib=protoactor, and with opts.
func NewSystem(logger zerolog.Logger, opts ...actor.ConfigOption) *actor.ActorSystem {
	factory := func(*actor.ActorSystem) *slog.Logger {
		return NewSlogLogger(logger.With().Str("lib", "protoactor").Logger())
	}
	return actor.NewActorSystem(append([]actor.ConfigOption{
		actor.WithLoggerFactory(factory),
		actor.WithDeadLetterRequestLogging(false),
	}, opts...)...)
}

// NewSlogLogger returns a slog.Logger writing into logger. It renames the
// attribute "message", which the actor library uses for a message's
// payload, to "payload" so that it does not collide with zerolog's message
// field, and it logs the library's per-crash "[ACTOR] Recovering" line at
// debug, because the manager logs each crash itself.
func NewSlogLogger(logger zerolog.Logger) *slog.Logger {
	return slog.New(&slogBridge{next: zerolog.NewSlogHandler(logger)})
}

// slogBridge adapts the actor library's records before zerolog sees them.
type slogBridge struct {
	next slog.Handler
}

const recoveringMessage = "[ACTOR] Recovering"

func (h *slogBridge) Enabled(ctx context.Context, level slog.Level) bool {
	// NOTE: a record that Handle demotes is let through here, so Handle
	// can decide with the demoted level.
	return h.next.Enabled(ctx, level)
}

func (h *slogBridge) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Message == recoveringMessage {
		rec.Level = slog.LevelDebug
		if !h.next.Enabled(ctx, rec.Level) {
			return nil
		}
	}
	out := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(renameAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *slogBridge) WithAttrs(attrs []slog.Attr) slog.Handler {
	renamed := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		renamed[i] = renameAttr(a)
	}
	return &slogBridge{next: h.next.WithAttrs(renamed)}
}

func (h *slogBridge) WithGroup(name string) slog.Handler {
	return &slogBridge{next: h.next.WithGroup(name)}
}

func renameAttr(a slog.Attr) slog.Attr {
	if a.Key == zerolog.MessageFieldName {
		a.Key = "payload"
	}
	return a
}
