package reconcile

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
)

// TaskBreakerCheck is the asynq task type of one run of the webhook's
// early warning between reconcile runs (queue "reconcile", task id
// breakerTaskID of its slot, no payload).
const TaskBreakerCheck = "reconcile:breaker-check"

// DefaultBreakerCheckInterval is how often the breaker watch checks the
// webhook's failure ratio. Zendesk's circuit breaker looks at 5 minutes,
// so the reconcile interval (5m by default) alone could warn only after it
// tripped.
const DefaultBreakerCheckInterval = time.Minute

// breakerCheckTimeout bounds one check (a few listing requests).
const breakerCheckTimeout = 30 * time.Second

// breakerTaskID is the task id of the breaker check for the slot starting
// at slot: every replica enqueues the same id, and asynq keeps one.
func breakerTaskID(slot time.Time) string {
	return TaskBreakerCheck + ":" + strconv.FormatInt(slot.UnixMilli(), 10)
}

// WatchBreaker enqueues a breaker check every Config.BreakerCheckInterval
// until ctx ends, the way Schedule enqueues runs: run it in serve's
// errgroup on every replica, next to the asynq server that has Register'ed
// the handler; one check happens per slot. It returns nil at once when the
// schedule is off (Interval 0) or no webhook is configured.
func (r *Reconciler) WatchBreaker(ctx context.Context) error {
	if r.cfg.Interval <= 0 || r.cfg.WebhookID == "" {
		return nil
	}
	every := r.cfg.BreakerCheckInterval
	return r.everySlot(ctx, every, func(ctx context.Context, slot time.Time) error {
		err := r.enqueueOnce(ctx, TaskBreakerCheck, breakerTaskID(slot), every, breakerCheckTimeout)
		if err != nil {
			return fmt.Errorf("enqueue breaker check: %w", err)
		}
		return nil
	})
}

// handleBreakerCheck runs the guardian's early warning (Guardian.CheckBreaker),
// which logs a warning itself; an unreadable failure ratio is not retried:
// the next slot checks again.
func (r *Reconciler) handleBreakerCheck(ctx context.Context, _ *asynq.Task) error {
	if _, err := r.guardian.CheckBreaker(ctx); err != nil {
		r.log.Debug().Err(err).Msg("webhook early-warning check")
	}
	return nil
}
