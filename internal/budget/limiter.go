package budget

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/zendesk"
)

// Limiter is the Zendesk rate limiter shared by every replica: a GCRA bucket
// in Redis (the algorithm of go-redis/redis_rate, written here so that its
// keys start with "deskrelay:"), plus an account-wide pause that Zendesk's
// own answers set (429 Retry-After, X-Rate-Limit-Remaining exhausted).
// Every Zendesk call of deskrelay asks it first. Safe for concurrent use.
type Limiter struct {
	rdb       redis.UniversalClient
	perMinute int
	burst     int
}

// NewLimiter returns the shared limiter for perMinute requests a minute,
// with a burst of a tenth of that.
func NewLimiter(rdb redis.UniversalClient, perMinute int) *Limiter {
	if perMinute < 1 {
		perMinute = 1
	}
	return &Limiter{rdb: rdb, perMinute: perMinute, burst: max(1, perMinute/10)}
}

// gcraScript: KEYS bucket, pause. ARGV: emission interval (µs), tolerance
// (µs). Returns {allowed 0|1, retry after µs}. Time is Redis's, so replicas
// with skewed clocks agree.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause = tonumber(redis.call('GET', KEYS[2]) or '0') * 1000
if pause > now then return {0, pause - now} end
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat + interval - tolerance
if allow_at > now then return {0, allow_at - now} end
local newtat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', newtat), 'PX', math.floor((newtat - now) / 1000) + 1000)
return {1, 0}
`)

// Allow takes one request from the account's budget if there is one;
// otherwise it says how long to wait.
func (l *Limiter) Allow(ctx context.Context) (ok bool, retryAfter time.Duration, err error) {
	return l.allow(ctx, "account", l.perMinute, time.Minute, l.burst)
}

// AllowUpdate takes one request from the account's Update Ticket budget
// (Zendesk: 100 a minute, 300 with High Volume), shared like the rest.
func (l *Limiter) AllowUpdate(ctx context.Context, perMinute int) (bool, time.Duration, error) {
	return l.allow(ctx, "updates", perMinute, time.Minute, max(1, perMinute/10))
}

// AllowTicketUpdate takes one update from a ticket's own budget (Zendesk
// allows limit updates per ticket per window).
func (l *Limiter) AllowTicketUpdate(ctx context.Context, ticketID int64, limit int, window time.Duration) (bool, time.Duration, error) {
	return l.allow(ctx, "ticket:"+strconv.FormatInt(ticketID, 10), limit, window, limit)
}

func (l *Limiter) allow(ctx context.Context, bucket string, rate int, period time.Duration, burst int) (bool, time.Duration, error) {
	interval := period.Microseconds() / int64(rate)
	tolerance := interval * int64(burst)
	res, err := gcraScript.Run(ctx, l.rdb, []string{keys.Default.RateLimitBucket(bucket), keys.Default.RateLimitPause()}, interval, tolerance).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("rate limiter: %w", err)
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Microsecond, nil
}

// pauseScript extends the pause to now+ARGV[1] ms (never shortens it).
var pauseScript = redis.NewScript(`
local t = redis.call('TIME')
local until_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > cur then
  redis.call('SET', KEYS[1], string.format('%d', until_ms), 'PX', tonumber(ARGV[1]) + 1000)
end
return until_ms
`)

// PauseFor stops every replica's Zendesk calls for d (e.g. a 429's
// Retry-After).
func (l *Limiter) PauseFor(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if err := pauseScript.Run(ctx, l.rdb, []string{keys.Default.RateLimitPause()}, d.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("rate limiter pause: %w", err)
	}
	return nil
}

// Observe tightens the limiter from one Zendesk response: when Zendesk says
// the account's budget is spent (X-Rate-Limit-Remaining: 0, or a 429), every
// replica pauses until Zendesk's reset (5s when it names none). Set it as
// zendesk.Config.OnResponse.
func (l *Limiter) Observe(r zendesk.Response) {
	exhausted := r.StatusCode == 429 || (r.RateLimit.Known && r.RateLimit.Limit > 0 && r.RateLimit.Remaining <= 0)
	if !exhausted {
		return
	}
	d := r.RateLimit.Reset
	if d <= 0 {
		d = 5 * time.Second
	}
	if r.StatusCode == 429 && r.RateLimit.Reset <= 0 {
		d = time.Second // the 429's Retry-After reaches PauseFor through the error
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = l.PauseFor(ctx, d)
}

// LimiterState is the limiter's state for /v1/status.
type LimiterState struct {
	PerMinute   int       `json:"per_minute"`
	PausedUntil time.Time `json:"paused_until,omitzero"`
}

// State reports the limiter's configuration and pause.
func (l *Limiter) State(ctx context.Context) (LimiterState, error) {
	s := LimiterState{PerMinute: l.perMinute}
	v, err := l.rdb.Get(ctx, keys.Default.RateLimitPause()).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return s, fmt.Errorf("rate limiter state: %w", err)
	}
	if v > 0 && time.UnixMilli(v).After(time.Now()) {
		s.PausedUntil = time.UnixMilli(v).UTC()
	}
	return s, nil
}
