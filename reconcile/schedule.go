package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/hibiken/asynq"
)

// TaskRun is the asynq task type of one scheduled run (queue "reconcile",
// task id runTaskID of its interval slot, no payload).
const TaskRun = "reconcile:run"

// runTaskID is the task id of the run for the interval slot starting at
// slot: every replica enqueues the same id, and asynq keeps one.
func runTaskID(slot time.Time) string { return "reconcile:" + strconv.FormatInt(slot.Unix(), 10) }

// Register adds the handlers of the scheduled run and of the breaker
// watch to the mux of the one asynq server (queues.NewServer).
func (r *Reconciler) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TaskRun, r.handleRun)
	mux.HandleFunc(TaskBreakerCheck, r.handleBreakerCheck)
}

func (r *Reconciler) handleRun(ctx context.Context, _ *asynq.Task) error {
	rep, err := r.RunOnce(ctx)
	switch {
	case errors.Is(err, ErrBusy):
		r.log.Info().Msg("reconcile: another run is in progress; skipping this slot")
		return nil
	case err != nil:
		r.log.Error().Err(err).Int("pages", rep.Pages).Int("enqueued", rep.Enqueued).Msg("reconcile run failed; the next run resumes from the checkpoint")
		return fmt.Errorf("reconcile run: %w: %w", err, asynq.SkipRetry)
	}
	ev := r.log.Info()
	if rep.Enqueued > 0 {
		ev = r.log.Warn() // events the webhook path lost
	}
	ev.Int("pages", rep.Pages).Int("tickets_scanned", rep.TicketsScanned).Int("events_found", rep.EventsFound).
		Int("already_delivered", rep.AlreadyDelivered).Int("enqueued", rep.Enqueued).
		Int("zendesk_requests", rep.ZendeskRequests).Dur("rate_limit_wait_ms", rep.RateLimitWait).
		Time("checkpoint", rep.Checkpoint).Msg("reconcile run done")
	return nil
}

// Schedule enqueues a run every Config.Interval until ctx ends (run it in
// serve's errgroup on every replica, next to the asynq server that has
// Register'ed the handler). All replicas enqueue the same task id per
// interval slot, so one run happens per slot; the lease keeps runs from
// overlapping. It returns nil at once when the schedule is off (Interval 0).
func (r *Reconciler) Schedule(ctx context.Context) error {
	if r.cfg.Interval <= 0 {
		return nil
	}
	return r.everySlot(ctx, r.cfg.Interval, r.enqueueRun)
}

// enqueueRun enqueues the run of one interval slot; a run already enqueued
// for that slot (by any replica) is not an error.
func (r *Reconciler) enqueueRun(ctx context.Context, slot time.Time) error {
	if err := r.enqueueOnce(ctx, TaskRun, runTaskID(slot), r.cfg.Interval, r.cfg.RunTimeout); err != nil {
		return fmt.Errorf("enqueue reconcile run: %w", err)
	}
	return nil
}

// everySlot calls enqueue with the start of the current slot of length
// every, then at the start of each next slot, until ctx ends. Every replica
// computes the same slots; enqueue gives a slot's task one id, so asynq
// keeps one task per slot whichever replicas enqueue it.
func (r *Reconciler) everySlot(ctx context.Context, every time.Duration, enqueue func(ctx context.Context, slot time.Time) error) error {
	for {
		now := r.cfg.Now()
		slot := now.Truncate(every)
		if err := enqueue(ctx, slot); err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("reconcile: could not schedule a task; trying again next slot")
		}
		if err := sleep(ctx, slot.Add(every).Sub(now)); err != nil {
			return nil
		}
	}
}

// enqueueOnce enqueues a task of type typ with id on the reconcile queue,
// never retried, kept after it ran for two slots (at least a minute) so that
// a replica that enqueues the same slot late finds the id taken; an id
// already taken is not an error.
func (r *Reconciler) enqueueOnce(ctx context.Context, typ, id string, every, timeout time.Duration) error {
	_, err := r.client.EnqueueContext(ctx, asynq.NewTask(typ, nil),
		asynq.Queue(queues.Reconcile),
		asynq.TaskID(id),
		asynq.MaxRetry(0),
		asynq.Timeout(timeout),
		asynq.Retention(max(2*every, time.Minute)),
	)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}
