package relay_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk"
)

func TestLimiter(t *testing.T) {
	ctx := context.Background()
	t.Run("BurstThenRefusesWithRetryAfter", func(t *testing.T) {
		db := redistest.New(t)
		l := relay.NewLimiter(db.Client, 600) // 10/s, burst 60
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
		a, b := relay.NewLimiter(db.Client, 60), relay.NewLimiter(db.Client, 60) // burst 6
		n := 0
		for range 10 {
			for _, l := range []*relay.Limiter{a, b} {
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
		l := relay.NewLimiter(db.Client, 6000)
		l.Observe(zendesk.Response{StatusCode: 200, RateLimit: zendesk.RateLimit{Known: true, Limit: 200, Remaining: 0, Reset: 30 * time.Second}})
		ok, d, err := relay.NewLimiter(db.Client, 6000).Allow(ctx)
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
		l := relay.NewLimiter(db.Client, 6000)
		l.Observe(zendesk.Response{StatusCode: 200, RateLimit: zendesk.RateLimit{Known: true, Limit: 200, Remaining: 150}})
		if ok, _, err := l.Allow(ctx); err != nil || !ok {
			t.Fatalf("refused (%v) with budget left", err)
		}
	})
	t.Run("PerTicketBudget", func(t *testing.T) {
		db := redistest.New(t)
		l := relay.NewLimiter(db.Client, 6000)
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
	t.Run("WaitReturnsWhenAllowed", func(t *testing.T) {
		db := redistest.New(t)
		l := relay.NewLimiter(db.Client, 6000)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for range 120 { // past the burst of 60: Wait must pace
			if err := l.Wait(cctx); err != nil {
				t.Fatalf("Wait: %v", err)
			}
		}
	})
}

func TestConfigValidate(t *testing.T) {
	db := redistest.New(t)
	tests := []struct {
		name    string
		cfg     relay.Config
		wantErr string
	}{
		{name: "DefaultsAreValid", cfg: relay.Config{}},
		{name: "TinyRetryMaxDelayNamesSetting", cfg: relay.Config{RetryMaxDelay: time.Millisecond}, wantErr: "relay: RetryMaxDelay: "},
		{name: "NegativeGapTimeoutNamesSetting", cfg: relay.Config{OrderGapTimeout: -time.Second}, wantErr: "relay: OrderGapTimeout: "},
		{name: "NegativeRateLimitNamesSetting", cfg: relay.Config{RateLimit: -1}, wantErr: "relay: RateLimit: "},
		{name: "ShortAttemptTimeoutNamesField", cfg: relay.Config{AttemptTimeout: time.Second}, wantErr: "AttemptTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := relay.New(tt.cfg, relay.Deps{Redis: db.Client, Asynq: db.AsynqOpt(), Log: testLogger(t)})
			if r != nil {
				defer r.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("New error = %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
	t.Run("MissingRedisIsError", func(t *testing.T) {
		if _, err := relay.New(relay.Config{}, relay.Deps{}); err == nil {
			t.Fatal("New without Redis succeeded")
		}
	})
}
