package budget

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
)

// Account is the shared budget as Take and Call use it. *Limiter is the one
// implementation; tests may fake it.
type Account interface {
	// Allow takes one request from the budget, or says how long to wait.
	Allow(ctx context.Context) (ok bool, retryAfter time.Duration, err error)
	// PauseFor stops every replica's Zendesk calls for d.
	PauseFor(ctx context.Context, d time.Duration) error
}

// Families is an Account that knows rate-limit families (*Limiter). Take
// and Call use it when the Account has it; an Account without it has one
// budget for every call.
type Families interface {
	// AllowFamily takes one request of family f (and of the account's
	// budget when f spends it), or says how long to wait.
	AllowFamily(ctx context.Context, f zendesk.Family) (ok bool, retryAfter time.Duration, err error)
	// PauseFamily stops every replica's calls of family f for d.
	PauseFamily(ctx context.Context, f zendesk.Family, d time.Duration) error
}

// Forever is the Options.MaxWait that waits inline as long as the budget
// takes.
const Forever time.Duration = math.MaxInt64

// Options say how long a caller waits inline for the budget. The zero value
// never waits: when the budget is spent, Take answers a *SpentError at once.
type Options struct {
	// Family is the rate-limit family of the call (zendesk.Classify); ""
	// is zendesk.FamilyAccount.
	Family zendesk.Family
	// MaxWait is the longest single inline wait; when the budget comes back
	// later than that, Take gives up with a *SpentError. Forever: no limit.
	MaxWait time.Duration
	// Within bounds all inline waits of one Take together (zero: no bound
	// beyond MaxWait).
	Within time.Duration
	// OnWait, when set, is told how long Take waited, each time it waited.
	OnWait func(time.Duration)
}

// SpentError says the account's budget is spent for longer than the caller
// waits inline: try again after RetryAfter.
type SpentError struct {
	RetryAfter time.Duration
}

func (e *SpentError) Error() string {
	return fmt.Sprintf("zendesk request budget spent for %s", e.RetryAfter)
}

// Spent reports whether err is (or wraps) a *SpentError, and its delay.
func Spent(err error) (time.Duration, bool) {
	var se *SpentError
	if errors.As(err, &se) {
		return se.RetryAfter, true
	}
	return 0, false
}

// Take takes one request of o.Family from the budget (the family's own,
// and the account's when the family spends it), waiting inline as o
// allows. A nil Account is no budget.
func Take(ctx context.Context, a Account, o Options) error {
	if a == nil {
		return nil
	}
	start := time.Now()
	waited := false
	defer func() {
		if waited && o.OnWait != nil {
			o.OnWait(time.Since(start))
		}
	}()
	for {
		ok, d, err := allow(ctx, a, o.Family)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if d > o.MaxWait || (o.Within > 0 && time.Since(start)+d > o.Within) {
			return &SpentError{RetryAfter: d}
		}
		waited = true
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func allow(ctx context.Context, a Account, f zendesk.Family) (bool, time.Duration, error) {
	if fa, ok := a.(Families); ok && f != "" {
		return fa.AllowFamily(ctx, f)
	}
	return a.Allow(ctx)
}

// Call runs one Zendesk request of o.Family within the budget: it takes a
// request (Take), runs fn, and when Zendesk answers 429 pauses every
// replica's calls of the family for its Retry-After (Pause429), so that
// they all wait, not only this caller. fn's error is returned as it is.
func Call[T any](ctx context.Context, a Account, o Options, fn func(context.Context) (T, error)) (T, error) {
	if err := Take(ctx, a, o); err != nil {
		var zero T
		return zero, err
	}
	v, err := fn(ctx)
	Pause429(ctx, a, err)
	return v, err
}

// Pause429 pauses every replica's calls of the 429's family (the error's
// Family; the account's for an Account without Families) when err is
// Zendesk's 429, for its Retry-After; for callers that take the budget
// with Take and then make the request themselves. Whether the account
// itself is spent is Limiter.Observe's to say, from the account's figures.
func Pause429(ctx context.Context, a Account, err error) {
	if a == nil || err == nil {
		return
	}
	ze := zendesk.AsError(err)
	if ze == nil || ze.Kind != zendesk.KindRateLimited {
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if fa, ok := a.(Families); ok {
		_ = fa.PauseFamily(pctx, ze.Family, ze.RetryAfter) // best effort: Limiter.Observe has paused already
		return
	}
	_ = a.PauseFor(pctx, ze.RetryAfter)
}
