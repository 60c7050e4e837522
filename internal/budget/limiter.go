package budget

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/zendesk"
)

// Limiter is the Zendesk rate limiter shared by every replica. Each
// rate-limit family (zendesk.Family, docs/zendesk.md "Families") has its
// own pause, set by Zendesk's answers (429 Retry-After, remaining
// exhausted), and, where its per-minute limit is known, its own GCRA bucket
// in Redis (the algorithm of go-redis/redis_rate, written here so that its
// keys start with "deskrelay:"). A family's limit throttles that family
// alone; the account's figures throttle every call, and a call of a family
// that spends the account takes from both buckets. Limits Zendesk reports
// are learned (stored in Redis, shared by the replicas) and the configured
// Rates are shares of them. Safe for concurrent use.
type Limiter struct {
	rdb   redis.UniversalClient
	space keys.Space
	rate  Rate // the account's
	upd   Rate // Update Ticket's

	mu      sync.Mutex
	learned map[zendesk.Family]learnedLimit // what this replica last stored
}

type learnedLimit struct {
	limit int
	at    time.Time
}

// Config configures a Limiter.
type Config struct {
	// Rate is what deskrelay may use of the account's budget
	// (DESKRELAY_ZENDESK_RATE_LIMIT). Zero: 50% of the limit Zendesk
	// reports (100 a minute until it has).
	Rate Rate
	// UpdateRate is what deskrelay may use of Update Ticket's budget
	// (DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT). Zero: 70% of the limit Zendesk
	// reports (100 a minute until it has; 300 with High Volume).
	UpdateRate Rate
	// Space is the account's key space. Zero: keys.Default.
	Space keys.Space
}

// defaultLimits are the per-minute limits assumed for a family until
// Zendesk reports one (docs/zendesk.md, "Rate limits"). A family missing
// here (tickets-index, search) has no bucket of its own until Zendesk
// reports its limit; its pause applies all the same.
var defaultLimits = map[zendesk.Family]int{
	zendesk.FamilyAccount:             100,
	zendesk.FamilyTicketsUpdate:       100,
	zendesk.FamilyIncrementalExports:  10,
	zendesk.FamilyUsersCreateOrUpdate: 60, // 1 a second per account
	zendesk.FamilyWebhooks:            100,
}

// New returns the shared limiter of cfg.Space's account.
func New(rdb redis.UniversalClient, cfg Config) *Limiter {
	if cfg.Rate.IsZero() {
		cfg.Rate = Share(50)
	}
	if cfg.UpdateRate.IsZero() {
		cfg.UpdateRate = Share(70)
	}
	if cfg.Space == (keys.Space{}) {
		cfg.Space = keys.Default
	}
	return &Limiter{rdb: rdb, space: cfg.Space, rate: cfg.Rate, upd: cfg.UpdateRate,
		learned: map[zendesk.Family]learnedLimit{}}
}

// NewLimiter returns the shared limiter of keys.Default's account for a
// fixed perMinute requests a minute of the account's budget, the Update
// Ticket budget at its default share.
func NewLimiter(rdb redis.UniversalClient, perMinute int) *Limiter {
	return New(rdb, Config{Rate: PerMinute(max(1, perMinute))})
}

// Allow takes one request from the account's budget if there is one;
// otherwise it says how long to wait.
func (l *Limiter) Allow(ctx context.Context) (ok bool, retryAfter time.Duration, err error) {
	return l.AllowFamily(ctx, zendesk.FamilyAccount)
}

// AllowFamily takes one request of family f: from f's bucket, and from
// the account's when f spends it; refused while the account or f is
// paused.
func (l *Limiter) AllowFamily(ctx context.Context, f zendesk.Family) (bool, time.Duration, error) {
	var bs []bucket
	if f.SpendsAccount() || f == zendesk.FamilyAccount {
		bs = append(bs, l.familyBucket(zendesk.FamilyAccount))
	}
	if f != zendesk.FamilyAccount {
		bs = append(bs, l.familyBucket(f))
	}
	return l.allow(ctx, l.pauses(f), bs)
}

// AllowUpdate takes one request from Update Ticket's own budget only (not
// the account's): perMinute a minute, or when perMinute is 0 the
// configured UpdateRate of the limit Zendesk reports. Refused while the
// account or Update Ticket is paused.
func (l *Limiter) AllowUpdate(ctx context.Context, perMinute int) (bool, time.Duration, error) {
	b := l.familyBucket(zendesk.FamilyTicketsUpdate)
	if perMinute > 0 {
		b.rate = PerMinute(perMinute)
	}
	return l.allow(ctx, l.pauses(zendesk.FamilyTicketsUpdate), []bucket{b})
}

// AllowTicketUpdate takes one update from a ticket's own budget (Zendesk
// allows limit updates per ticket per window).
func (l *Limiter) AllowTicketUpdate(ctx context.Context, ticketID int64, limit int, window time.Duration) (bool, time.Duration, error) {
	b := bucket{key: l.space.RateLimitBucket("ticket:" + strconv.FormatInt(ticketID, 10)),
		rate: PerMinute(max(1, limit)), period: window, burst: max(1, limit)}
	return l.allow(ctx, l.pauses(zendesk.FamilyTicketsUpdate), []bucket{b})
}

// bucket is one GCRA bucket as allowScript takes it.
type bucket struct {
	key, limitKey string
	rate          Rate          // per period
	defaultLimit  int           // until Zendesk reports one; 0: no bucket
	period        time.Duration // a minute, or a ticket's window
	burst         int           // 0: a tenth of the rate
}

func (l *Limiter) familyBucket(f zendesk.Family) bucket {
	b := bucket{key: l.space.RateLimitFamilyBucket(string(f)), limitKey: l.space.RateLimitFamilyLimit(string(f)),
		rate: Share(100), defaultLimit: defaultLimits[f], period: time.Minute}
	switch f {
	case zendesk.FamilyAccount:
		b.key, b.rate = l.space.RateLimitBucket("account"), l.rate
	case zendesk.FamilyTicketsUpdate:
		b.rate = l.upd
	}
	return b
}

// pauses are the pause keys a call of family f heeds: the account's always
// (Zendesk may throttle an unusual spike account-wide), and f's own.
func (l *Limiter) pauses(f zendesk.Family) []string {
	if f == zendesk.FamilyAccount {
		return []string{l.space.RateLimitPause()}
	}
	return []string{l.space.RateLimitPause(), l.space.RateLimitFamilyPause(string(f))}
}

// allowScript: ARGV[1] is the number n of pause KEYS, which come first;
// then each bucket has two KEYS (its state, its learned limit) and five
// ARGV (fixed rate or 0, percent, default limit, period µs, burst or 0).
// Refused while any pause lasts or any bucket is empty; otherwise every
// bucket is taken from. Returns {allowed 0|1, retry after µs}. Time is
// Redis's, so replicas with skewed clocks agree.
var allowScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local np = tonumber(ARGV[1])
local wait = 0
for i = 1, np do
  local p = tonumber(redis.call('GET', KEYS[i]) or '0') * 1000
  if p - now > wait then wait = p - now end
end
if wait > 0 then return {0, wait} end
local tats = {}
for j = 0, (#KEYS - np) / 2 - 1 do
  local a = 2 + j * 5
  local rate = tonumber(ARGV[a])
  if rate <= 0 then
    local limit = tonumber(redis.call('GET', KEYS[np + 2 * j + 2]) or ARGV[a + 2])
    rate = 0
    if limit > 0 then rate = math.max(1, math.floor(limit * tonumber(ARGV[a + 1]) / 100)) end
  end
  if rate > 0 then
    local interval = math.floor(tonumber(ARGV[a + 3]) / rate)
    local burst = tonumber(ARGV[a + 4])
    if burst <= 0 then burst = math.max(1, math.floor(rate / 10)) end
    local key = KEYS[np + 2 * j + 1]
    local tat = tonumber(redis.call('GET', key) or '0')
    if tat < now then tat = now end
    local allow_at = tat + interval - interval * burst
    if allow_at - now > wait then wait = allow_at - now end
    tats[#tats + 1] = {key, tat + interval}
  end
end
if wait > 0 then return {0, wait} end
for _, e in ipairs(tats) do
  redis.call('SET', e[1], string.format('%d', e[2]), 'PX', math.floor((e[2] - now) / 1000) + 1000)
end
return {1, 0}
`)

func (l *Limiter) allow(ctx context.Context, pauses []string, bs []bucket) (bool, time.Duration, error) {
	ks := append([]string(nil), pauses...)
	args := []any{len(pauses)}
	for _, b := range bs {
		fixed, pct := b.rate.args()
		lk := b.limitKey
		if lk == "" {
			lk = b.key // read only for a share
		}
		ks = append(ks, b.key, lk)
		args = append(args, fixed, pct, b.defaultLimit, b.period.Microseconds(), b.burst)
	}
	res, err := allowScript.Run(ctx, l.rdb, ks, args...).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("rate limiter: %w", err)
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Microsecond, nil
}
