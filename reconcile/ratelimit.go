package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	zdbudget "github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/zendesk"
)

// exportSlot is a sliding-window log of the export's requests in Redis,
// shared by every replica: a request is allowed when fewer than ARGV[2]
// happened in the last ARGV[1] µs (Redis's clock). Returns 0 when allowed
// (and recorded), else how many µs to wait.
var exportSlot = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.floor(window / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1000 then wait = 1000 end
return wait`)

// exportMargin widens the export window a little: requests travel to
// Zendesk, whose own window need not line up with Redis's clock.
func exportMargin(w time.Duration) time.Duration { return max(w/50, 50*time.Millisecond) }

// budget is one run's accounting of Zendesk requests and rate-limit waits.
type budget struct {
	mu       sync.Mutex
	requests int
	limited  int
	waited   time.Duration
}

func (b *budget) addRequest() { b.mu.Lock(); b.requests++; b.mu.Unlock() }
func (b *budget) addWait(d time.Duration) {
	b.mu.Lock()
	b.waited += d
	b.mu.Unlock()
}
func (b *budget) add429() { b.mu.Lock(); b.limited++; b.mu.Unlock() }

func (b *budget) snapshot() (requests, limited int, waited time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.requests, b.limited, b.waited
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// waitExport blocks until the export's shared rate limit allows a request.
func (r *Reconciler) waitExport(ctx context.Context, b *budget) error {
	if r.cfg.ExportLimit <= 0 {
		return nil
	}
	window := r.cfg.ExportWindow + exportMargin(r.cfg.ExportWindow)
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	member := hex.EncodeToString(tok[:])
	for {
		us, err := exportSlot.Run(ctx, r.rdb, []string{r.space.ReconcileExportRequests()},
			window.Microseconds(), r.cfg.ExportLimit, member).Int64()
		if err != nil {
			return fmt.Errorf("export rate limit: %w", err)
		}
		if us == 0 {
			return nil
		}
		d := time.Duration(us) * time.Microsecond
		start := time.Now()
		err = sleep(ctx, d)
		b.addWait(time.Since(start))
		if err != nil {
			return err
		}
	}
}

// call runs one Zendesk request under the rate limits: the export's own
// (export true), the account's shared budget (zdbudget.Call, which also
// pauses every replica on a 429), a 429's Retry-After (waited out, not
// counted as an attempt), and up to MaxAttempts tries on temporary failures.
func call[T any](ctx context.Context, r *Reconciler, b *budget, export bool, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	attempt := 0
	wait := zdbudget.Options{MaxWait: zdbudget.Forever, OnWait: func(d time.Duration) {
		if d > 10*time.Millisecond {
			b.addWait(d)
		}
	}}
	counted := func(ctx context.Context) (T, error) {
		b.addRequest()
		return fn(ctx)
	}
	for {
		if export {
			if err := r.waitExport(ctx, b); err != nil {
				return zero, err
			}
		}
		v, err := zdbudget.Call(ctx, r.limiter, wait, counted)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return zero, err
		}
		ze := zendesk.AsError(err)
		switch {
		case ze != nil && ze.Kind == zendesk.KindRateLimited:
			b.add429()
			d := ze.RetryAfter
			if d <= 0 {
				d = time.Second
			}
			r.log.Info().Str("op", ze.Op).Dur("retry_after_ms", d).Msg("zendesk rate limit: waiting")
			start := time.Now()
			serr := sleep(ctx, d)
			b.addWait(time.Since(start))
			if serr != nil {
				return zero, err
			}
			continue
		case ze != nil && ze.Kind == zendesk.KindTemporary:
			attempt++
			if attempt >= r.cfg.MaxAttempts {
				return zero, err
			}
			d := ze.RetryAfter
			if d <= 0 {
				d = min(r.cfg.RetryBaseDelay<<(attempt-1), 30*time.Second)
			}
			r.log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in_ms", d).Msg("zendesk request failed: retrying")
			if serr := sleep(ctx, d); serr != nil {
				return zero, err
			}
			continue
		}
		return zero, err
	}
}
