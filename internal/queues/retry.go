package queues

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/validate"
	"github.com/deskrelay/deskrelay/zendesk"
)

// This file is deskrelay's whole retry policy, for both queues (outbound to
// Zendesk, inbound to the sink). asynq has one RetryDelayFunc and one
// IsFailure per server, so both are here; TestRetryPolicy pins them, and the
// README's "Retry semantics" copies the same table.
//
//   what the handler returned          | next attempt                         | counts as attempt
//   -----------------------------------+--------------------------------------+------------------
//   nil                                | done                                 | -
//   Wait(d, err) (429 Retry-After,     | after exactly d                      | no
//     rate limiter, outage gate, turn) |                                      |
//   zendesk KindRateLimited            | after exactly RetryAfter (min 1s)    | no
//   Fail(reason, err)                  | never: failed, kept for replay       | -
//   any other error (5xx, timeout, …)  | full-jitter backoff, capped          | yes

// MaxRetry is the retry count deskrelay gives every task: perpetual in
// practice. Not math.MaxInt: asynq stores it as int32.
const MaxRetry = math.MaxInt32

// Policy computes retry delays.
type Policy struct {
	// BaseDelay is the first retry's ceiling. Default 1s.
	BaseDelay time.Duration
	// MaxDelay caps the backoff. Default 1h.
	MaxDelay time.Duration
	// rand returns a number in [0, n); nil means math/rand/v2.
	rand func(n int64) int64
}

// Validate names what is wrong with the policy's settings (zero values take
// the defaults).
func (p Policy) Validate() error {
	if p.MaxDelay != 0 && p.MaxDelay < time.Second {
		return validate.Errorf("queues", "MaxDelay", "must be at least 1s, got %s", p.MaxDelay)
	}
	return nil
}

func (p Policy) withDefaults() Policy {
	if p.BaseDelay <= 0 {
		p.BaseDelay = time.Second
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = time.Hour
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	if p.rand == nil {
		p.rand = rand.Int64N
	}
	return p
}

// Backoff returns the delay before retry number n (0 for the first retry):
// full jitter over min(MaxDelay, BaseDelay·2ⁿ), at least 100ms, computed
// without overflow for any n.
func (p Policy) Backoff(n int) time.Duration {
	p = p.withDefaults()
	ceiling := p.MaxDelay
	if n < 0 {
		n = 0
	}
	if n < 62 && p.BaseDelay <= p.MaxDelay>>uint(n) {
		ceiling = p.BaseDelay << uint(n)
	}
	d := time.Duration(p.rand(int64(ceiling) + 1))
	if d < MinDelay {
		d = MinDelay
	}
	return d
}

// MinDelay is the shortest delay before any retry: a Wait shorter than it
// waits MinDelay.
const MinDelay = 100 * time.Millisecond

// RetryDelay is the asynq.RetryDelayFunc of every deskrelay server.
func (p Policy) RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if d, ok := waitFor(err); ok {
		return d
	}
	return p.Backoff(n)
}

// IsFailure is the asynq IsFailure func: waits (rate limits, the outage gate,
// waiting for a conversation's turn) do not count as failed attempts.
func IsFailure(err error) bool {
	_, wait := waitFor(err)
	return !wait
}

// IsWait reports whether err is (or wraps) a Wait: a snooze asked by the
// handler itself, not Zendesk's answer.
func IsWait(err error) bool {
	var w *waitError
	return errors.As(err, &w)
}

func waitFor(err error) (time.Duration, bool) {
	var w *waitError
	if errors.As(err, &w) {
		return max(w.d, MinDelay), true
	}
	if ze := zendesk.AsError(err); ze != nil && ze.Kind == zendesk.KindRateLimited {
		d := ze.RetryAfter
		if d <= 0 {
			d = time.Second
		}
		return d, true
	}
	return 0, false
}

type waitError struct {
	d   time.Duration
	err error
}

func (w *waitError) Error() string {
	if w.err == nil {
		return fmt.Sprintf("waiting %s", w.d)
	}
	return fmt.Sprintf("waiting %s: %v", w.d, w.err)
}

func (w *waitError) Unwrap() error { return w.err }

// Wait asks asynq to run the task again after exactly d without counting an
// attempt ("snooze"): for rate limits, the outage gate and ordering.
func Wait(d time.Duration, err error) error { return &waitError{d: d, err: err} }

// Fail ends a task for good with a reason ("unauthorized", "invalid",
// "gone"); the handler has already kept the message for replay. asynq
// archives the task, so it shows in asynqmon.
func Fail(reason string, err error) error {
	return fmt.Errorf("%s: %w: %w", reason, err, asynq.SkipRetry)
}
