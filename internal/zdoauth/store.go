package zdoauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// stored is the shared OAuth state read from keys.OAuthToken.
type stored struct {
	access      string
	expiry      time.Time // zero: no expiry known
	expiresIn   time.Duration
	refresh     string
	refreshedAt time.Time
	lastError   string
	lastErrorAt time.Time
	rejected    string // mark of the credentials the token endpoint rejected
	seq         int64
}

var storedFields = []string{"access", "expiry", "expires_in", "refresh", "refreshed_at",
	"last_error", "last_error_at", "rejected", "seq"}

func (s *Source) load(ctx context.Context) (stored, error) {
	vals, err := s.rdb.HMGet(ctx, s.key, storedFields...).Result()
	if err != nil {
		return stored{}, err
	}
	str := func(i int) string {
		v, _ := vals[i].(string)
		return v
	}
	ms := func(i int) time.Time {
		n, err := strconv.ParseInt(str(i), 10, 64)
		if err != nil || n <= 0 {
			return time.Time{}
		}
		return time.UnixMilli(n)
	}
	st := stored{
		access:      str(0),
		expiry:      ms(1),
		refresh:     str(3),
		refreshedAt: ms(4),
		lastError:   str(5),
		lastErrorAt: ms(6),
		rejected:    str(7),
	}
	if n, err := strconv.ParseInt(str(2), 10, 64); err == nil && n > 0 {
		st.expiresIn = time.Duration(n) * time.Second
	}
	st.seq, _ = strconv.ParseInt(str(8), 10, 64)
	return st, nil
}

// usable reports whether the stored access token can be sent now.
func (st stored) usable(now time.Time) bool {
	return st.access != "" && (st.expiry.IsZero() || now.Before(st.expiry))
}

// dueEarly reports whether a usable token should be renewed before it
// expires: within before of its expiry, at most a quarter of its lifetime.
func (st stored) dueEarly(now time.Time, before time.Duration) bool {
	if st.expiry.IsZero() {
		return false
	}
	if st.expiresIn > 0 {
		before = min(before, st.expiresIn/4)
	}
	return !now.Before(st.expiry.Add(-before))
}

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// mark identifies a set of credentials (this client's id and secret with a
// refresh token) without revealing them.
func (s *Source) mark(refresh string) string {
	return hash(s.cfg.ClientID, s.cfg.ClientSecret, refresh)
}

// seedScript applies a configured refresh token that was never configured
// before: it replaces the stored one and drops the access token made with
// the old one. KEYS[1] state; ARGV cfg field, refresh token, now (ms).
var seedScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'refresh', ARGV[2])
redis.call('HDEL', KEYS[1], 'access', 'expiry', 'expires_in', 'rejected', 'last_error', 'last_error_at')
redis.call('HINCRBY', KEYS[1], 'seq', 1)
return 1
`)

// saveScript stores a refresh's result if the refresh token it consumed is
// still the stored one. KEYS[1] state; ARGV used refresh token, access
// token, expiry (ms, 0 none), expires_in (s), new refresh token, now (ms).
var saveScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'refresh') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'access', ARGV[2], 'expiry', ARGV[3], 'expires_in', ARGV[4],
  'refresh', ARGV[5], 'refreshed_at', ARGV[6])
redis.call('HDEL', KEYS[1], 'last_error', 'last_error_at', 'rejected')
redis.call('HINCRBY', KEYS[1], 'seq', 1)
return 1
`)

// failScript records a failed refresh if the refresh token it tried is still
// the stored one. KEYS[1] state; ARGV used refresh token, error text, now
// (ms), rejected mark ("" for a temporary failure).
var failScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'refresh') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'last_error', ARGV[2], 'last_error_at', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'rejected', ARGV[4])
end
redis.call('HINCRBY', KEYS[1], 'seq', 1)
return 1
`)

func unixMilli(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}
