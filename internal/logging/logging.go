// Package logging builds deskrelay's zerolog logger and adapts it for asynq.
// The logger is injected everywhere as a value; there is no global logger.
//
// It must not import any other deskrelay package.
package logging

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"
)

// New returns a logger writing to w in format "json" (default) or
// "console", at level ("debug", "info", "warn", "error"; default info).
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
	case "", "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	default:
		return zerolog.Nop(), fmt.Errorf("unknown log format %q (want json or console)", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
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
