package main

import (
	"context"
	"time"

	"github.com/deskrelay/deskrelay/internal/keys"
)

// breakerCheckInterval is how often serve checks the webhook's failure ratio.
// Zendesk's circuit breaker looks at 5 minutes, so the reconcile interval
// (5m by default) alone could warn only after it tripped.
const breakerCheckInterval = time.Minute

// watchBreaker runs the guardian's early warning every minute, on one replica
// at a time (the first to take the minute's key), until ctx is done.
func (d *daemon) watchBreaker(ctx context.Context) {
	every := d.cfg.tuning.breakerInterval
	if every <= 0 {
		every = breakerCheckInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := d.rdb.SetNX(ctx, keys.BreakerCheck, 1, every*9/10).Result()
		if err != nil || !ok {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := d.reconciler.Guardian().CheckBreaker(cctx); err != nil {
			d.log.Debug().Err(err).Msg("webhook early-warning check")
		}
		cancel()
	}
}
