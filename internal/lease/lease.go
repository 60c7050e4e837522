package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease is one owner's hold on a key.
type Lease struct {
	rdb   redis.Cmdable
	key   string
	token string
	ttl   time.Duration
}

var (
	// extendScript sets KEYS[1]'s TTL to ARGV[2] ms if it holds ARGV[1].
	extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)
	// deleteScript deletes KEYS[1] only if it still holds ARGV[1].
	deleteScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
)

// Acquire takes the lease on key for ttl with a new random owner token. It
// returns nil (and no error) when another owner holds the key.
func Acquire(ctx context.Context, rdb redis.Cmdable, key string, ttl time.Duration) (*Lease, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("lease %s: owner token: %w", key, err)
	}
	l := &Lease{rdb: rdb, key: key, token: hex.EncodeToString(b[:]), ttl: ttl}
	ok, err := rdb.SetNX(ctx, key, l.token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", key, err)
	}
	if !ok {
		return nil, nil
	}
	return l, nil
}

// Key is the leased key.
func (l *Lease) Key() string { return l.key }

// Token is the owner's token, for a caller's own script that writes only
// while the key still holds it (a fenced write).
func (l *Lease) Token() string { return l.token }

// TTL is the lease's time to live, set again by every Extend.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Extend gives the lease its full TTL again. held is false when the key no
// longer holds this owner's token (it expired, or another owner took it).
func (l *Lease) Extend(ctx context.Context) (held bool, err error) {
	n, err := extendScript.Run(ctx, l.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("extend lease %s: %w", l.key, err)
	}
	return n == 1, nil
}

// Held reports whether the key still holds this owner's token.
func (l *Lease) Held(ctx context.Context) (bool, error) {
	v, err := l.rdb.Get(ctx, l.key).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check lease %s: %w", l.key, err)
	}
	return v == l.token, nil
}

// Release deletes the key if it still holds this owner's token; released is
// false when it did not (the lease had expired or changed hands).
func (l *Lease) Release(ctx context.Context) (released bool, err error) {
	ok, err := CompareAndDelete(ctx, l.rdb, l.key, l.token)
	if err != nil {
		return false, fmt.Errorf("release lease %s: %w", l.key, err)
	}
	return ok, nil
}

// CompareAndDelete deletes key only if it holds value, in one step, and
// reports whether it did.
func CompareAndDelete(ctx context.Context, rdb redis.Scripter, key, value string) (bool, error) {
	n, err := deleteScript.Run(ctx, rdb, []string{key}, value).Int()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}
