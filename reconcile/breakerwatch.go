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
// breakerTaskID of its slot, payload taskPayload).
const TaskBreakerCheck = "reconcile:breaker-check"

// DefaultBreakerCheckInterval is how often the breaker watch checks the
// webhook's failure ratio. Zendesk's circuit breaker looks at 5 minutes,
// so the reconcile interval (5m by default) alone could warn only after it
// tripped.
const DefaultBreakerCheckInterval = time.Minute

// breakerCheckTimeout bounds one check (a few listing requests).
const breakerCheckTimeout = 30 * time.Second

// breakerTaskID is the task id of the breaker check for the slot whose
// base (slots.base) is slot: every replica enqueues the same id, and asynq
// keeps one. reconcile:breaker-check:<unix ms> for the default account,
// reconcile:breaker-check{acme}:<unix ms> for acme.
func (r *Reconciler) breakerTaskID(slot time.Time) string {
	return r.taskID(TaskBreakerCheck+":", strconv.FormatInt(slot.UnixMilli(), 10))
}

// WatchBreaker enqueues r's breaker checks, one per BreakerCheckInterval
// slot, until ctx ends, as ScheduleAll does for many accounts. It returns
// nil at once when the schedule is off (Interval 0) or no webhook is
// configured.
func (r *Reconciler) WatchBreaker(ctx context.Context) error {
	return schedule(ctx, r.breakerSeries())
}

// watching is true when the breaker watch runs for r (the schedule is on
// and a webhook is configured).
func (r *Reconciler) watching() bool { return r.cfg.Interval > 0 && r.cfg.WebhookID != "" }

// breakerSeries is r's breaker checks (none when it does not watch).
func (r *Reconciler) breakerSeries() []*series {
	if !r.watching() {
		return nil
	}
	every := r.cfg.BreakerCheckInterval
	return []*series{{r: r, what: TaskBreakerCheck, s: r.breakerSlots(), enqueue: func(ctx context.Context, slot time.Time) error {
		if err := r.enqueueOnce(ctx, TaskBreakerCheck, r.breakerTaskID(slot), every, breakerCheckTimeout); err != nil {
			return fmt.Errorf("enqueue breaker check: %w", err)
		}
		return nil
	}}}
}

// handleBreakerCheck runs the guardian's early warning (Guardian.CheckBreaker),
// which logs a warning itself, once per breaker slot: when the slot already
// has its figures (a scheduled run read them, or the check of another
// replica), it reads nothing. An unreadable failure ratio is not retried:
// the next slot checks again.
func (r *Reconciler) handleBreakerCheck(ctx context.Context, t *asynq.Task) error {
	if err := r.mine(t); err != nil {
		return err
	}
	if bs := r.guardian.recentBreaker(ctx); bs != nil {
		r.log.Debug().Time("read_at", bs.CheckedAt).Msg("webhook early-warning check: this slot's figures are already read")
		return nil
	}
	if _, err := r.guardian.CheckBreaker(ctx); err != nil {
		r.log.Debug().Err(err).Msg("webhook early-warning check")
	}
	return nil
}
