package budget_test

import (
	"context"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/keys"
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

// TestFamilies: an endpoint family's limit throttles that family alone;
// only the account's figures throttle the account (docs/zendesk.md,
// "Families").
func TestFamilies(t *testing.T) {
	ctx := context.Background()
	t.Run("WebhooksExhaustedPausesWebhooksOnly", func(t *testing.T) {
		l := budget.NewLimiter(redistest.New(t).Client, 6000)
		l.Observe(zendesk.Response{StatusCode: 200, Family: zendesk.FamilyWebhooks,
			RateLimit: zendesk.RateLimit{Known: true, Limit: 100, Remaining: 0, Reset: 30 * time.Second}})
		if ok, d, err := l.Allow(ctx); err != nil || !ok {
			t.Fatalf("account call after the Webhooks API's remaining 0: ok=%v retryAfter=%s err=%v; want allowed", ok, d, err)
		}
		wantPaused(t, l, zendesk.FamilyWebhooks, 25*time.Second)
		wantAllowed(t, l, zendesk.FamilyTicketsUpdate)
	})
	t.Run("AccountExhaustedPausesEverything", func(t *testing.T) {
		l := budget.NewLimiter(redistest.New(t).Client, 6000)
		l.Observe(zendesk.Response{StatusCode: 200, Family: zendesk.FamilyTicketsUpdate, SpendsAccount: true,
			RateLimit: zendesk.RateLimit{Known: true, Limit: 100, Remaining: 80},
			Account:   zendesk.RateLimit{Known: true, Limit: 700, Remaining: 0, Reset: 30 * time.Second}})
		for _, f := range []zendesk.Family{zendesk.FamilyAccount, zendesk.FamilyTicketsUpdate, zendesk.FamilyIncrementalExports, zendesk.FamilyWebhooks} {
			wantPaused(t, l, f, 25*time.Second)
		}
	})
	t.Run("UpdateTicket429PausesUpdatesOnly", func(t *testing.T) {
		l := budget.NewLimiter(redistest.New(t).Client, 6000)
		l.Observe(zendesk.Response{StatusCode: 429, Family: zendesk.FamilyTicketsUpdate, SpendsAccount: true, RetryAfter: 20 * time.Second,
			RateLimit: zendesk.RateLimit{Known: true, Limit: 100, Remaining: 0},
			Account:   zendesk.RateLimit{Known: true, Limit: 700, Remaining: 650, Reset: 40 * time.Second}})
		if ok, d, err := l.Allow(ctx); err != nil || !ok {
			t.Fatalf("account call after Update Ticket's 429: ok=%v retryAfter=%s err=%v; want allowed", ok, d, err)
		}
		wantPaused(t, l, zendesk.FamilyTicketsUpdate, 19*time.Second) // its Retry-After
		if ok, d, _ := l.AllowUpdate(ctx, 0); ok || d < 19*time.Second {
			t.Fatalf("AllowUpdate after Update Ticket's 429: ok=%v retryAfter=%s; want refused for its Retry-After", ok, d)
		}
		wantAllowed(t, l, zendesk.FamilyWebhooks)
	})
	t.Run("FamilyBucketThrottlesItsFamilyOnly", func(t *testing.T) {
		l := budget.NewLimiter(redistest.New(t).Client, 6000)
		for i := range 10 { // the Webhooks API: 100 a minute until known, a burst of 10
			if ok, _, err := l.AllowFamily(ctx, zendesk.FamilyWebhooks); err != nil || !ok {
				t.Fatalf("webhooks call %d refused (%v) within the burst", i, err)
			}
		}
		if ok, d, _ := l.AllowFamily(ctx, zendesk.FamilyWebhooks); ok || d <= 0 {
			t.Fatalf("11th webhooks call: ok=%v retryAfter=%s; want refused", ok, d)
		}
		wantAllowed(t, l, zendesk.FamilyAccount)
	})
	t.Run("FamilySpendingTheAccountTakesFromBoth", func(t *testing.T) {
		l := budget.NewLimiter(redistest.New(t).Client, 60) // a burst of 6
		wantAllowed(t, l, zendesk.FamilyIncrementalExports) // 10 a minute, a burst of 1
		if ok, d, _ := l.AllowFamily(ctx, zendesk.FamilyIncrementalExports); ok || d < 5*time.Second {
			t.Fatalf("second export: ok=%v retryAfter=%s; want refused for about 6s by the family's own bucket", ok, d)
		}
		for i := range 5 { // the export took one of the account's 6
			if ok, _, _ := l.Allow(ctx); !ok {
				t.Fatalf("account call %d refused within what the export left", i)
			}
		}
		if ok, _, _ := l.Allow(ctx); ok {
			t.Fatal("7th call allowed: the export did not spend the account's burst of 6")
		}
	})
	t.Run("ShareAppliesToTheLearnedLimit", func(t *testing.T) {
		db := redistest.New(t)
		burst := func(l *budget.Limiter) int {
			n := 0
			for ok := true; ok && n < 100; n++ {
				ok, _, _ = l.Allow(ctx)
				if !ok {
					return n
				}
			}
			return n
		}
		l := budget.New(db.Client, budget.Config{Rate: budget.Share(50)})
		if n := burst(l); n != 5 {
			t.Fatalf("before Zendesk reports a limit: a burst of %d, want 5 (a tenth of 50%% of 100)", n)
		}
		l.Observe(zendesk.Response{StatusCode: 200, Family: zendesk.FamilyAccount, SpendsAccount: true,
			RateLimit: zendesk.RateLimit{Known: true, Limit: 700, Remaining: 650}})
		if _, err := db.Client.Del(ctx, keys.Default.RateLimitBucket("account")).Result(); err != nil {
			t.Fatal(err)
		}
		if n := burst(budget.New(db.Client, budget.Config{Rate: budget.Share(50)})); n != 35 {
			t.Fatalf("after Zendesk reported 700: a burst of %d, want 35 (a tenth of 50%% of 700)", n)
		}
	})
	t.Run("LearnedLimitIsShared", func(t *testing.T) {
		db := redistest.New(t)
		a := budget.New(db.Client, budget.Config{Rate: budget.Share(50)})
		if st, _ := a.State(ctx); st.PerMinute != 50 {
			t.Fatalf("before Zendesk reports a limit: %d a minute, want 50%% of 100", st.PerMinute)
		}
		a.Observe(zendesk.Response{StatusCode: 200, Family: zendesk.FamilyTicketsUpdate, SpendsAccount: true,
			RateLimit: zendesk.RateLimit{Known: true, Limit: 300, Remaining: 299},
			Account:   zendesk.RateLimit{Known: true, Limit: 700, Remaining: 650}})
		st, err := budget.New(db.Client, budget.Config{Rate: budget.Share(50), UpdateRate: budget.Share(70)}).State(ctx)
		if err != nil || st.PerMinute != 350 || st.Limit != 700 || st.UpdatesPerMinute != 210 {
			t.Fatalf("another replica's state = %+v, %v; want 350 of 700 a minute, 210 updates (70%% of 300)", st, err)
		}
	})
}

func wantPaused(t *testing.T, l *budget.Limiter, f zendesk.Family, atLeast time.Duration) {
	t.Helper()
	ok, d, err := l.AllowFamily(context.Background(), f)
	if err != nil || ok || d < atLeast {
		t.Fatalf("%s call: ok=%v retryAfter=%s err=%v; want refused for at least %s", f, ok, d, err, atLeast)
	}
}

func wantAllowed(t *testing.T, l *budget.Limiter, f zendesk.Family) {
	t.Helper()
	if ok, d, err := l.AllowFamily(context.Background(), f); err != nil || !ok {
		t.Fatalf("%s call: ok=%v retryAfter=%s err=%v; want allowed", f, ok, d, err)
	}
}
