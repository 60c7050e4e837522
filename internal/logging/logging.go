// Package logging builds deskrelay's zerolog logger and adapts it for asynq
// and go-redis.
// The logger is injected everywhere as a value; there is no global logger.
//
// It must not import any other deskrelay package.
package logging

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"
)

// TimeFormat is the timestamp of every line: RFC 3339 with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

var setTimeFormat sync.Once

// New returns a logger writing to w in format "auto" (default: console on
// a terminal, JSON otherwise), "json" or "console", at level ("debug",
// "info", "warn", "error"; default info).
func New(w io.Writer, format, level string) (zerolog.Logger, error) {
	lvl := zerolog.InfoLevel
	if level != "" {
		l, err := zerolog.ParseLevel(strings.ToLower(level))
		if err != nil || l == zerolog.NoLevel {
			return zerolog.Nop(), fmt.Errorf("unknown log level %q (want debug, info, warn or error)", level)
		}
		lvl = l
	}
	switch strings.ToLower(format) {
	case "", "auto":
		if IsTerminal(w) {
			w = console(w)
		}
	case "json":
	case "console":
		w = console(w)
	default:
		return zerolog.Nop(), fmt.Errorf("unknown log format %q (want auto, json or console)", format)
	}
	// zerolog reads the time format from a package variable; every
	// deskrelay logger wants the same one.
	setTimeFormat.Do(func() { zerolog.TimeFieldFormat = TimeFormat })
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func console(w io.Writer) io.Writer {
	return zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: !IsTerminal(w)}
}

// IsTerminal reports whether w is a terminal (a character device).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// Redis adapts a zerolog logger to go-redis's logger (redis.SetLogger), so
// that its internal messages are log lines like any other.
type Redis struct{ L zerolog.Logger }

// Printf logs a go-redis message at warn level: go-redis only logs what
// went wrong (a dial that failed, a pool problem).
func (r Redis) Printf(_ context.Context, format string, v ...any) {
	r.L.Warn().Str("component", "redis").Msg(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// Asynq adapts a zerolog logger to asynq.Logger.
type Asynq struct{ L zerolog.Logger }

var _ asynq.Logger = Asynq{}

// Debug logs an asynq message at debug level.
func (a Asynq) Debug(args ...any) { a.L.Debug().Str("component", "asynq").Msg(fmt.Sprint(args...)) }

// Info logs an asynq message at info level.
func (a Asynq) Info(args ...any) { a.L.Info().Str("component", "asynq").Msg(fmt.Sprint(args...)) }

// Warn logs an asynq message at warn level.
func (a Asynq) Warn(args ...any) { a.L.Warn().Str("component", "asynq").Msg(fmt.Sprint(args...)) }

// Error logs an asynq message at error level.
func (a Asynq) Error(args ...any) { a.L.Error().Str("component", "asynq").Msg(fmt.Sprint(args...)) }

// Fatal logs an asynq message at error level (asynq calls it before it gives up; deskrelay logs it as an error and lets its owner decide).
func (a Asynq) Fatal(args ...any) { a.L.Error().Str("component", "asynq").Msg(fmt.Sprint(args...)) }
