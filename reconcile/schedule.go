package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/relay"
)

// TaskRun is the asynq task type of one scheduled run (queue "reconcile",
// task id RunTaskID of its interval slot, no payload).
const TaskRun = "reconcile:run"

// RunTaskID is the task id of the run for the interval slot starting at
// slot: every replica enqueues the same id, and asynq keeps one.
func RunTaskID(slot time.Time) string { return "reconcile:" + strconv.FormatInt(slot.Unix(), 10) }

// Register adds the scheduled run's handler to the mux of the one asynq
// server (relay.NewServer).
func (r *Reconciler) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TaskRun, r.handleRun)
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
	for {
		now := r.cfg.Now()
		slot := now.Truncate(r.cfg.Interval)
		if err := r.EnqueueRun(ctx, slot); err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("reconcile: could not schedule a run; trying again next interval")
		}
		if err := sleep(ctx, slot.Add(r.cfg.Interval).Sub(now)); err != nil {
			return nil
		}
	}
}

// EnqueueRun enqueues the run of one interval slot; a run already enqueued
// for that slot (by any replica) is not an error.
func (r *Reconciler) EnqueueRun(ctx context.Context, slot time.Time) error {
	retention := max(2*r.cfg.Interval, time.Minute)
	_, err := r.client.EnqueueContext(ctx, asynq.NewTask(TaskRun, nil),
		asynq.Queue(relay.QueueReconcile),
		asynq.TaskID(RunTaskID(slot)),
		asynq.MaxRetry(0),
		asynq.Timeout(r.cfg.RunTimeout),
		asynq.Retention(retention),
	)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("enqueue reconcile run: %w", err)
	}
	return nil
}

// Status is the reconciler's part of GET /v1/status. It reads Redis only.
type Status struct {
	// Enabled is false when the schedule is off (Interval 0).
	Enabled  bool   `json:"enabled"`
	Interval string `json:"interval"`
	// Checkpoint is where the next scheduled run starts; CheckpointAge is
	// how far behind now it is, in seconds (-1 when there is none yet).
	Checkpoint    time.Time `json:"checkpoint,omitzero"`
	CheckpointAge float64   `json:"checkpoint_age_seconds"`
	// Running is true while a run holds the lease.
	Running bool `json:"running"`
	// PendingGapSince is a gap the next run will go back to cover.
	PendingGapSince time.Time `json:"pending_gap_since,omitzero"`
	// LastRun is the last scheduled run's report.
	LastRun *Report `json:"last_run,omitempty"`
	// Webhook is the guardian's last check (nil when none was recorded or
	// no webhook/target is configured).
	Webhook *WatchState `json:"webhook,omitempty"`
}

// Status reports the schedule's state for /v1/status, from Redis, without
// calling Zendesk.
func (r *Reconciler) Status(ctx context.Context) (Status, error) {
	s := Status{Enabled: r.cfg.Interval > 0, Interval: r.cfg.Interval.String(), CheckpointAge: -1}
	cp, ok, err := r.Checkpoint(ctx)
	if err != nil {
		return s, err
	}
	if ok {
		s.Checkpoint = cp
		s.CheckpointAge = r.cfg.Now().Sub(cp).Round(time.Second).Seconds()
	}
	n, err := r.rdb.Exists(ctx, keys.ReconcileLease).Result()
	if err != nil {
		return s, fmt.Errorf("read reconcile lease: %w", err)
	}
	s.Running = n == 1
	if rw, ok, err := r.readUnix(ctx, keys.ReconcileRewind); err == nil && ok {
		s.PendingGapSince = rw
	}
	if b, err := r.rdb.Get(ctx, keys.ReconcileLastRun).Bytes(); err == nil {
		var rep Report
		if json.Unmarshal(b, &rep) == nil {
			s.LastRun = &rep
		}
	}
	if st, ok, err := r.guardian.LastCheck(ctx); err == nil && ok && st.Kind != "" {
		s.Webhook = &st
	}
	return s, nil
}

func (r *Reconciler) saveLastRun(rep Report) {
	b, err := json.Marshal(rep)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.rdb.Set(ctx, keys.ReconcileLastRun, b, 0).Err(); err != nil {
		r.log.Warn().Err(err).Msg("save last reconcile run")
	}
}
