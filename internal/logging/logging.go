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
	"time"

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
// that its internal messages are log lines like any other. A message that
// repeats is logged when it starts, once a minute as a count, and when it
// stops (see repeats). Use NewRedis; it is safe for concurrent use.
type Redis struct {
	l zerolog.Logger
	repeats
}

// NewRedis returns the go-redis adapter writing through l.
func NewRedis(l zerolog.Logger) *Redis {
	return &Redis{l: l.With().Str("component", "redis").Logger(), repeats: repeats{now: time.Now}}
}

// Printf logs a go-redis message at warn level: go-redis only logs what
// went wrong (a dial that failed, a pool problem).
func (r *Redis) Printf(_ context.Context, format string, v ...any) {
	r.log(r.l, zerolog.WarnLevel, strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// Asynq adapts a zerolog logger to asynq.Logger. Debug and info lines pass
// through; a warning or error that repeats is logged when it starts, once a
// minute as a count, and when it stops (see repeats). Use NewAsynq; it is
// safe for concurrent use.
type Asynq struct {
	l zerolog.Logger
	repeats
}

var _ asynq.Logger = (*Asynq)(nil)

// NewAsynq returns the asynq adapter writing through l.
func NewAsynq(l zerolog.Logger) *Asynq {
	return &Asynq{l: l.With().Str("component", "asynq").Logger(), repeats: repeats{now: time.Now}}
}

// Debug logs an asynq message at debug level.
func (a *Asynq) Debug(args ...any) { a.log(a.l, zerolog.DebugLevel, fmt.Sprint(args...)) }

// Info logs an asynq message at info level.
func (a *Asynq) Info(args ...any) { a.log(a.l, zerolog.InfoLevel, fmt.Sprint(args...)) }

// Warn logs an asynq message at warn level.
func (a *Asynq) Warn(args ...any) { a.log(a.l, zerolog.WarnLevel, fmt.Sprint(args...)) }

// Error logs an asynq message at error level.
func (a *Asynq) Error(args ...any) { a.log(a.l, zerolog.ErrorLevel, fmt.Sprint(args...)) }

// Fatal logs an asynq message at error level (asynq calls it before it
// gives up; deskrelay logs it as an error and lets its owner decide).
func (a *Asynq) Fatal(args ...any) { a.log(a.l, zerolog.ErrorLevel, fmt.Sprint(args...)) }
