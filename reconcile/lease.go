package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
)

// lease is the scheduled run's hold on keys.ReconcileLease.
type lease struct {
	r     *Reconciler
	token string
}

var (
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)
	// compareAndDelete deletes KEYS[1] only if it still holds ARGV[1].
	compareAndDelete = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
)

// acquire takes the lease, or returns nil when another run holds it.
func (r *Reconciler) acquire(ctx context.Context) (*lease, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	l := &lease{r: r, token: hex.EncodeToString(b[:])}
	ok, err := r.rdb.SetNX(ctx, keys.ReconcileLease, l.token, r.cfg.LeaseTTL).Result()
	if err != nil {
		return nil, fmt.Errorf("take reconcile lease: %w", err)
	}
	if !ok {
		return nil, nil
	}
	return l, nil
}

// keep renews the lease every third of its TTL until stop is called; when
// a renewal finds the lease gone (expired, taken by another run), it cancels
// the run with errLeaseLost. A failed renewal (Redis unreachable) is retried
// until the lease would have expired.
func (l *lease) keep(ctx context.Context, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	ttl := l.r.cfg.LeaseTTL
	go func() {
		defer close(finished)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(ctx, ttl/3)
			n, err := renewScript.Run(rctx, l.r.rdb, []string{keys.ReconcileLease}, l.token, ttl.Milliseconds()).Int()
			rcancel()
			switch {
			case err == nil && n == 1:
				last = time.Now()
			case err == nil:
				l.r.log.Error().Msg("reconcile lease lost: stopping this run")
				cancel(errLeaseLost)
				return
			case time.Since(last) >= ttl:
				l.r.log.Error().Err(err).Msg("reconcile lease could not be renewed: stopping this run")
				cancel(errLeaseLost)
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// release gives the lease back if this run still holds it.
func (r *Reconciler) release(l *lease) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := compareAndDelete.Run(ctx, r.rdb, []string{keys.ReconcileLease}, l.token).Err(); err != nil {
		r.log.Warn().Err(err).Msg("release reconcile lease (it expires by itself)")
	}
}
