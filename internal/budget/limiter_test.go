package budget_test

import (
	"context"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/zendesk"
)

func TestLimiter(t *testing.T) {
	ctx := context.Background()
	t.Run("BurstThenRefusesWithRetryAfter", func(t *testing.T) {
		db := redistest.New(t)
		l := budget.NewLimiter(db.Client, 600) // 10/s, burst 60
		for i := range 60 {
			if ok, _, err := l.Allow(ctx); err != nil || !ok {
				t.Fatalf("request %d refused (%v) within the burst", i, err)
			}
		}
		ok, d, err := l.Allow(ctx)
		if err != nil || ok || d <= 0 || d > 100*time.Millisecond {
			t.Fatalf("after the burst: ok=%v retryAfter=%s err=%v; want refused for at most 100ms", ok, d, err)
		}
	})
	t.Run("SharedByEveryHandle", func(t *testing.T) {
		db := redistest.New(t)
		a, b := budget.NewLimiter(db.Client, 60), budget.NewLimiter(db.Client, 60) // burst 6
		n := 0
		for range 10 {
			for _, l := range []*budget.Limiter{a, b} {
				if ok, _, _ := l.Allow(ctx); ok {
					n++
				}
			}
		}
		if n != 6 {
			t.Fatalf("two replicas got %d requests, want the shared burst of 6", n)
		}
	})
	t.Run("ObserveExhaustedPausesEveryone", func(t *testing.T) {
		db := redistest.New(t)
		l := budget.NewLimiter(db.Client, 6000)
		l.Observe(zendesk.Response{StatusCode: 200, RateLimit: zendesk.RateLimit{Known: true, Limit: 200, Remaining: 0, Reset: 30 * time.Second}})
		ok, d, err := budget.NewLimiter(db.Client, 6000).Allow(ctx)
		if err != nil || ok || d < 25*time.Second {
			t.Fatalf("after Remaining 0: ok=%v retryAfter=%s err=%v; want paused about 30s", ok, d, err)
		}
		st, err := l.State(ctx)
		if err != nil || st.PausedUntil.IsZero() || st.PerMinute != 6000 {
			t.Fatalf("state = %+v, %v; want paused", st, err)
		}
	})
	t.Run("ObserveWithBudgetLeftDoesNothing", func(t *testing.T) {
		db := redistest.New(t)
		l := budget.NewLimiter(db.Client, 6000)
		l.Observe(zendesk.Response{StatusCode: 200, RateLimit: zendesk.RateLimit{Known: true, Limit: 200, Remaining: 150}})
		if ok, _, err := l.Allow(ctx); err != nil || !ok {
			t.Fatalf("refused (%v) with budget left", err)
		}
	})
	t.Run("PerTicketBudget", func(t *testing.T) {
		db := redistest.New(t)
		l := budget.NewLimiter(db.Client, 6000)
		for i := range 30 {
			if ok, _, _ := l.AllowTicketUpdate(ctx, 7, 30, 10*time.Minute); !ok {
				t.Fatalf("update %d refused within 30 per 10 minutes", i)
			}
		}
		ok, d, _ := l.AllowTicketUpdate(ctx, 7, 30, 10*time.Minute)
		if ok || d < 19*time.Second {
			t.Fatalf("31st update: ok=%v retryAfter=%s; want refused for about 20s", ok, d)
		}
		if ok, _, _ := l.AllowTicketUpdate(ctx, 8, 30, 10*time.Minute); !ok {
			t.Fatal("another ticket refused")
		}
	})
	t.Run("TakeForeverPaces", func(t *testing.T) {
		db := redistest.New(t)
		l := budget.NewLimiter(db.Client, 1200) // 20/s, burst 120
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var waits int
		o := budget.Options{MaxWait: budget.Forever, OnWait: func(time.Duration) { waits++ }}
		for range 150 { // past the burst: Take must pace
			if err := budget.Take(cctx, l, o); err != nil {
				t.Fatalf("Take: %v", err)
			}
		}
		if waits == 0 {
			t.Fatal("150 requests at 1200/min with a burst of 120 never waited")
		}
	})
}
