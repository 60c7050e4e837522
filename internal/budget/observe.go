package budget

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/zendesk"
)

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

// PauseFor stops every replica's Zendesk calls for d (the account's
// budget is spent).
func (l *Limiter) PauseFor(ctx context.Context, d time.Duration) error {
	return l.PauseFamily(ctx, zendesk.FamilyAccount, d)
}

// PauseFamily stops every replica's calls of family f for d (for
// FamilyAccount or "": every call).
func (l *Limiter) PauseFamily(ctx context.Context, f zendesk.Family, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if err := pauseScript.Run(ctx, l.rdb, []string{l.pauseKey(f)}, d.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("rate limiter pause (%s): %w", familyOf(f), err)
	}
	return nil
}

func (l *Limiter) pauseKey(f zendesk.Family) string {
	if f = familyOf(f); f == zendesk.FamilyAccount {
		return l.space.RateLimitPause()
	}
	return l.space.RateLimitFamilyPause(string(f))
}

func familyOf(f zendesk.Family) zendesk.Family {
	if f == "" {
		return zendesk.FamilyAccount
	}
	return f
}

// Observe learns from one Zendesk response; set it as
// zendesk.Config.OnResponse. It stores the limits Zendesk reports (the
// family's and the account's), pauses a family whose own figures say it is
// spent until their reset, the account (every call) when the account's
// figures say so, and on a 429 pauses for its Retry-After the family the
// call belongs to, or the account when the account is the one spent.
func (l *Limiter) Observe(r zendesk.Response) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	f := familyOf(r.Family)
	account := r.Account
	if f == zendesk.FamilyAccount {
		account = r.RateLimit
	}
	l.learn(ctx, f, r.RateLimit)
	if f != zendesk.FamilyAccount {
		l.learn(ctx, zendesk.FamilyAccount, account)
	}
	if spent(account) {
		_ = l.PauseFamily(ctx, zendesk.FamilyAccount, resetOr(account.Reset, 5*time.Second))
	}
	if f != zendesk.FamilyAccount && spent(r.RateLimit) {
		_ = l.PauseFamily(ctx, f, resetOr(r.RateLimit.Reset, 5*time.Second))
	}
	if r.StatusCode != 429 {
		return
	}
	d := resetOr(r.RetryAfter, resetOr(r.RateLimit.Reset, resetOr(account.Reset, zendesk.DefaultRetryAfter)))
	if spent(account) {
		f = zendesk.FamilyAccount
	}
	_ = l.PauseFamily(ctx, f, d)
}

func spent(rl zendesk.RateLimit) bool { return rl.Known && rl.Limit > 0 && rl.Remaining <= 0 }

func resetOr(d, otherwise time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return otherwise
}

// learnEvery is how often a replica rewrites a limit that has not changed,
// to keep it from expiring.
const learnEvery = time.Minute

// learnTTL is how long a learned limit outlives its last report.
const learnTTL = 24 * time.Hour

// learn stores the per-minute limit Zendesk reported for f, for every
// replica; Rate shares apply to it from then on.
func (l *Limiter) learn(ctx context.Context, f zendesk.Family, rl zendesk.RateLimit) {
	if !rl.Known || rl.Limit <= 0 {
		return
	}
	now := time.Now()
	l.mu.Lock()
	prev := l.learned[f]
	fresh := prev.limit == rl.Limit && now.Sub(prev.at) < learnEvery
	if !fresh {
		l.learned[f] = learnedLimit{limit: rl.Limit, at: now}
	}
	l.mu.Unlock()
	if fresh {
		return
	}
	if err := l.rdb.Set(ctx, l.space.RateLimitFamilyLimit(string(f)), rl.Limit, learnTTL).Err(); err != nil {
		l.mu.Lock()
		delete(l.learned, f) // try again next time
		l.mu.Unlock()
	}
}

// LimiterState is the limiter's state for /v1/status.
type LimiterState struct {
	// PerMinute is what deskrelay may use of the account's budget now.
	PerMinute int `json:"per_minute"`
	// Rate is DESKRELAY_ZENDESK_RATE_LIMIT; Limit the account's limit as
	// Zendesk last reported it (0: not yet, 100 assumed).
	Rate  Rate `json:"rate"`
	Limit int  `json:"limit,omitempty"`
	// UpdatesPerMinute is what deskrelay may use of Update Ticket's budget
	// now (DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT of its limit).
	UpdatesPerMinute int       `json:"updates_per_minute"`
	PausedUntil      time.Time `json:"paused_until,omitzero"`
}

// State reports the limiter's rates and the account's pause.
func (l *Limiter) State(ctx context.Context) (LimiterState, error) {
	s := LimiterState{Rate: l.rate}
	acc, err := l.learnedLimit(ctx, zendesk.FamilyAccount)
	if err != nil {
		return s, err
	}
	upd, err := l.learnedLimit(ctx, zendesk.FamilyTicketsUpdate)
	if err != nil {
		return s, err
	}
	s.Limit = acc
	s.PerMinute = l.rate.Of(cmp.Or(acc, defaultLimits[zendesk.FamilyAccount]))
	s.UpdatesPerMinute = l.upd.Of(cmp.Or(upd, defaultLimits[zendesk.FamilyTicketsUpdate]))
	v, err := l.rdb.Get(ctx, l.space.RateLimitPause()).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return s, fmt.Errorf("rate limiter state: %w", err)
	}
	if v > 0 && time.UnixMilli(v).After(time.Now()) {
		s.PausedUntil = time.UnixMilli(v).UTC()
	}
	return s, nil
}

func (l *Limiter) learnedLimit(ctx context.Context, f zendesk.Family) (int, error) {
	n, err := l.rdb.Get(ctx, l.space.RateLimitFamilyLimit(string(f))).Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("rate limiter state: %w", err)
	}
	return n, nil
}
