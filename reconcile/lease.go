package reconcile

import (
	"context"
	"fmt"
	"time"

	redislease "github.com/deskrelay/deskrelay/internal/lease"
)

// lease is the scheduled run's hold on the account's ReconcileLease.
type lease struct {
	r     *Reconciler
	l     *redislease.Lease
	token string // for the scripts that move a checkpoint only under the lease
}

// acquire takes the lease, or returns nil when another run holds it.
func (r *Reconciler) acquire(ctx context.Context) (*lease, error) {
	l, err := redislease.Acquire(ctx, r.rdb, r.space.ReconcileLease(), r.cfg.LeaseTTL)
	if err != nil {
		return nil, fmt.Errorf("take reconcile lease: %w", err)
	}
	if l == nil {
		return nil, nil
	}
	return &lease{r: r, l: l, token: l.Token()}, nil
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
			held, err := l.l.Extend(rctx)
			rcancel()
			switch {
			case err == nil && held:
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
	if _, err := l.l.Release(ctx); err != nil {
		r.log.Warn().Err(err).Msg("release reconcile lease (it expires by itself)")
	}
}
