package reconcile

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
)

// TaskRun is the asynq task type of one scheduled run (queue "reconcile",
// task id runTaskID of its interval slot, payload taskPayload).
const TaskRun = "reconcile:run"

// taskPayload is the JSON payload of every task the reconciler enqueues.
// Account names the Zendesk account the task belongs to, omitted for the
// account "default": package main routes a task to that account's
// Reconciler (the one whose Register'ed handlers run it), and a task
// without one (the release before accounts enqueued none) is the default
// account's.
type taskPayload struct {
	Account string `json:"account,omitempty"`
}

// payload is the payload of r's tasks.
func (r *Reconciler) payload() []byte {
	p := taskPayload{}
	if r.Account() != keys.DefaultAccount {
		p.Account = r.Account()
	}
	b, _ := json.Marshal(p) // cannot fail
	return b
}

// TaskAccount is the account a reconcile task belongs to: its payload's
// "account", keys.DefaultAccount when the payload is empty or has none. An
// error names a payload that is not a JSON object.
func TaskAccount(payload []byte) (string, error) {
	if len(bytes.TrimSpace(payload)) == 0 {
		return keys.DefaultAccount, nil
	}
	var p taskPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return "", fmt.Errorf("reconcile task payload: not a JSON object with an account: %w", err)
	}
	return cmp.Or(p.Account, keys.DefaultAccount), nil
}

// taskID is a task id of r's account: prefix + slot for the account
// "default" (the ids of the release before accounts), prefix + "{account}"
// + slot for any other (braces never occur in an account name, so no two
// accounts' ids collide).
func (r *Reconciler) taskID(prefix, slot string) string {
	if r.Account() == keys.DefaultAccount {
		return prefix + slot
	}
	return strings.TrimSuffix(prefix, ":") + "{" + r.Account() + "}:" + slot
}

// runTaskID is the task id of the run for the interval slot whose base
// (slots.base) is slot: every replica enqueues the same id, and asynq keeps
// one. reconcile:<unix> for the default account, reconcile{acme}:<unix>
// for acme.
func (r *Reconciler) runTaskID(slot time.Time) string {
	return r.taskID("reconcile:", strconv.FormatInt(slot.Unix(), 10))
}

// Register adds the handlers of the scheduled run and of the breaker
// watch to the mux of the one asynq server (queues.NewServer); with many
// accounts, to the mux package main runs for this Reconciler's account.
func (r *Reconciler) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TaskRun, r.handleRun)
	mux.HandleFunc(TaskBreakerCheck, r.handleBreakerCheck)
}

// mine checks that t belongs to r's account: a task routed to another
// account's Reconciler is refused, not run against the wrong account.
func (r *Reconciler) mine(t *asynq.Task) error {
	acct, err := TaskAccount(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if acct != r.Account() {
		return fmt.Errorf("reconcile: task %s of account %q reached the reconciler of account %q: %w", t.Type(), acct, r.Account(), asynq.SkipRetry)
	}
	return nil
}

func (r *Reconciler) handleRun(ctx context.Context, t *asynq.Task) error {
	if err := r.mine(t); err != nil {
		return err
	}
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

// ScheduleAll enqueues the scheduled runs and breaker checks of every
// Reconciler in rs (one per account) until ctx ends, on one goroutine and
// one timer: run it in serve's errgroup on every replica, next to the asynq
// server whose muxes have Register'ed the handlers. Each account's slots
// are shifted by SlotOffset (the spread); all replicas enqueue a slot's
// task under the same id, so one run (one check) happens per slot, and the
// lease keeps an account's runs from overlapping. Reconcilers whose
// schedule is off (Interval 0) are skipped; it returns nil at once when
// nothing is scheduled.
func ScheduleAll(ctx context.Context, rs []*Reconciler) error {
	var all []*series
	for _, r := range rs {
		all = append(all, r.runSeries()...)
		all = append(all, r.breakerSeries()...)
	}
	return schedule(ctx, all)
}

// Schedule enqueues r's runs, one per interval slot, until ctx ends, as
// ScheduleAll does for many accounts. It returns nil at once when the
// schedule is off (Interval 0).
func (r *Reconciler) Schedule(ctx context.Context) error {
	return schedule(ctx, r.runSeries())
}

// runSeries is r's scheduled runs (none when Interval is 0).
func (r *Reconciler) runSeries() []*series {
	if r.cfg.Interval <= 0 {
		return nil
	}
	return []*series{{r: r, what: TaskRun, s: r.runSlots(), enqueue: r.enqueueRun}}
}

// enqueueRun enqueues the run of one interval slot; a run already enqueued
// for that slot (by any replica) is not an error.
func (r *Reconciler) enqueueRun(ctx context.Context, slot time.Time) error {
	if err := r.enqueueOnce(ctx, TaskRun, r.runTaskID(slot), r.cfg.Interval, r.cfg.RunTimeout); err != nil {
		return fmt.Errorf("enqueue reconcile run: %w", err)
	}
	return nil
}

// enqueueOnce enqueues a task of type typ with id and r's payload on the
// reconcile queue, never retried, kept after it ran for two slots (at least
// a minute) so that a replica that enqueues the same slot late finds the id
// taken; an id already taken is not an error.
func (r *Reconciler) enqueueOnce(ctx context.Context, typ, id string, every, timeout time.Duration) error {
	_, err := r.client.EnqueueContext(ctx, asynq.NewTask(typ, r.payload()),
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
