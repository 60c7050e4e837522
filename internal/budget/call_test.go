package budget_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/zendesk"
)

func TestCall(t *testing.T) {
	ctx := context.Background()
	spend := func(t *testing.T, l *budget.Limiter) {
		t.Helper()
		for range 6 { // 60/min has a burst of 6
			if err := budget.Take(ctx, l, budget.Options{}); err != nil {
				t.Fatalf("Take within the burst: %v", err)
			}
		}
	}
	t.Run("SpentBudgetAnswersSpentErrorWithoutCalling", func(t *testing.T) {
		l := budget.NewLimiter(redistest.New(t).Client, 60)
		spend(t, l)
		called := false
		_, err := budget.Call(ctx, l, budget.Options{MaxWait: 100 * time.Millisecond}, func(context.Context) (int, error) {
			called = true
			return 0, nil
		})
		d, ok := budget.Spent(err)
		if !ok || d <= 100*time.Millisecond || called {
			t.Fatalf("err = %v (spent %v, %s), called %v; want a SpentError over 100ms and no call", err, ok, d, called)
		}
	})
	t.Run("WithinBoundsAllInlineWaits", func(t *testing.T) {
		l := budget.NewLimiter(redistest.New(t).Client, 60)
		spend(t, l)
		err := budget.Take(ctx, l, budget.Options{MaxWait: time.Hour, Within: 10 * time.Millisecond})
		if _, ok := budget.Spent(err); !ok {
			t.Fatalf("Take = %v, want a SpentError: the next request is a second away", err)
		}
	})
	t.Run("RateLimitedAnswerPausesTheAccount", func(t *testing.T) {
		l := budget.NewLimiter(redistest.New(t).Client, 6000)
		zerr := &zendesk.Error{Op: "list comments", Status: 429, Kind: zendesk.KindRateLimited, RetryAfter: 30 * time.Second}
		_, err := budget.Call(ctx, l, budget.Options{}, func(context.Context) (int, error) { return 0, zerr })
		if !errors.Is(err, zerr) {
			t.Fatalf("err = %v, want Zendesk's error as it is", err)
		}
		st, err := l.State(ctx)
		if err != nil || time.Until(st.PausedUntil) < 25*time.Second {
			t.Fatalf("paused until %s (%v), want about 30s from now", st.PausedUntil, err)
		}
		if _, ok := budget.Spent(budget.Take(ctx, l, budget.Options{})); !ok {
			t.Fatal("Take during the pause was allowed")
		}
	})
	t.Run("FamilysRateLimitedAnswerPausesThatFamilyOnly", func(t *testing.T) {
		l := budget.NewLimiter(redistest.New(t).Client, 6000)
		zerr := &zendesk.Error{Op: "update ticket", Status: 429, Kind: zendesk.KindRateLimited, RetryAfter: 30 * time.Second, Family: zendesk.FamilyTicketsUpdate}
		upd := budget.Options{Family: zendesk.FamilyTicketsUpdate}
		if _, err := budget.Call(ctx, l, upd, func(context.Context) (int, error) { return 0, zerr }); !errors.Is(err, zerr) {
			t.Fatalf("err = %v, want Zendesk's error as it is", err)
		}
		if d, ok := budget.Spent(budget.Take(ctx, l, upd)); !ok || d < 25*time.Second {
			t.Fatalf("ticket update after its 429: spent %v for %s; want refused for about 30s", ok, d)
		}
		if err := budget.Take(ctx, l, budget.Options{}); err != nil {
			t.Fatalf("account call after Update Ticket's 429: %v; want allowed", err)
		}
	})
	t.Run("NilAccountIsNoBudget", func(t *testing.T) {
		v, err := budget.Call(ctx, nil, budget.Options{}, func(context.Context) (int, error) { return 7, nil })
		if err != nil || v != 7 {
			t.Fatalf("Call = %d, %v; want 7, nil", v, err)
		}
	})
}
