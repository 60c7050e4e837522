package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrBusy is returned by RunOnce when another run (on this or another
// replica) holds the lease.
var ErrBusy = errors.New("reconcile: another run holds the lease")

// errLeaseLost is the cause of a run's cancellation when its lease expired
// and could not be renewed.
var errLeaseLost = errors.New("reconcile: lease lost")

// Options adjust a Backfill.
type Options struct {
	// DryRun reports what would be enqueued and changes nothing: no ledger
	// entry, no task, no checkpoint.
	DryRun bool
	// Progress, when set, receives one line per page read.
	Progress io.Writer
}

// Backfill reconciles an explicit window, independently of the scheduled
// checkpoint (`deskrelay reconcile --since … [--until …] [--dry-run]`). A
// zero Until means as recent as the export allows. The error wraps
// ErrBadWindow for a bad window; the report says how far it got otherwise.
func (r *Reconciler) Backfill(ctx context.Context, w Window, opts Options) (Report, error) {
	rep, err := r.backfill(ctx, w, opts)
	rep.Account = r.Account()
	return rep, err
}

func (r *Reconciler) backfill(ctx context.Context, w Window, opts Options) (Report, error) {
	w, err := w.check(r.cfg.Now(), r.cfg.Lag)
	if err != nil {
		return Report{Window: w, DryRun: opts.DryRun}, err
	}
	rep, err := r.scan(ctx, w, scanOptions{dry: opts.DryRun, progress: opts.Progress})
	if err == nil {
		r.log.Info().Time("since", w.Since).Time("until", w.Until).Bool("dry_run", opts.DryRun).
			Int("events_found", rep.EventsFound).Int("enqueued", rep.Enqueued).Int("already_delivered", rep.AlreadyDelivered).
			Int("zendesk_requests", rep.ZendeskRequests).Msg("backfill done")
	}
	return rep, err
}

// RunOnce is one scheduled run: it takes the lease (ErrBusy when another
// run holds it), lets the guardian check the webhook, reads the export from
// the checkpoint (or from a gap the guardian rewound to) up to now − Lag,
// moves the checkpoint after each page whose events are durable, and
// records its report for /v1/status. The report names the account.
func (r *Reconciler) RunOnce(ctx context.Context) (Report, error) {
	rep, err := r.runOnce(ctx)
	rep.Account = r.Account()
	return rep, err
}

func (r *Reconciler) runOnce(ctx context.Context) (Report, error) {
	l, err := r.acquire(ctx)
	if err != nil {
		r.m.run("error")
		return Report{}, err
	}
	if l == nil {
		r.m.run("busy")
		return Report{}, ErrBusy
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := l.keep(ctx, cancel)
	defer func() {
		stop()
		r.release(l)
	}()

	b := &budget{}
	if _, gerr := r.guardian.check(ctx, b, false); gerr != nil && ctx.Err() == nil {
		r.log.Warn().Err(gerr).Msg("webhook guardian check failed")
	}

	rep, err := r.runFrom(ctx, l, b)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && errors.Is(cause, errLeaseLost) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		rep.Errors = append(rep.Errors, err.Error())
		r.m.run("error")
	} else {
		r.m.run("ok")
		r.m.succeeded(r.cfg.Now())
	}
	rep.Account = r.Account()
	r.saveLastRun(rep)
	return rep, err
}

// runFrom scans the scheduled window (scheduledWindow) under lease l and
// clears the guardian's rewind once the window covered it.
func (r *Reconciler) runFrom(ctx context.Context, l *lease, b *budget) (Report, error) {
	now := r.cfg.Now()
	w, cp, rewind, err := r.scheduledWindow(ctx, now)
	if err != nil {
		return Report{}, err
	}
	if !w.Since.Before(w.Until) {
		rep := Report{Window: w, Complete: true, Checkpoint: cp, StartedAt: now}
		rep.ZendeskRequests, rep.RateLimited, rep.RateLimitWait = b.snapshot()
		return rep, nil
	}
	rep, err := r.scan(ctx, w, scanOptions{budget: b, lease: l, onPage: func(ctx context.Context, at time.Time) error {
		if err := r.advanceCheckpoint(ctx, l, exportCheckpoint, at); err != nil {
			return err
		}
		r.m.checkpoint(at)
		return nil
	}})
	if c, ok, cerr := r.Checkpoint(context.WithoutCancel(ctx)); cerr == nil && ok {
		rep.Checkpoint = c
	}
	if err != nil || rewind.IsZero() {
		return rep, err
	}
	return rep, r.clearRewind(ctx, rewind)
}

// scheduledWindow is what a scheduled run reads: from the checkpoint (now −
// Lag − InitialLookback on the very first run), or from the guardian's
// rewind when that is further back, up to now − Lag. rewind is zero when
// none is pending.
func (r *Reconciler) scheduledWindow(ctx context.Context, now time.Time) (w Window, cp, rewind time.Time, err error) {
	until := now.Add(-r.cfg.Lag).Truncate(time.Second).UTC()
	cp, ok, err := r.Checkpoint(ctx)
	if err != nil {
		return w, cp, rewind, err
	}
	if !ok {
		cp = until.Add(-r.cfg.InitialLookback)
	}
	start := cp
	rewind, hasRewind, err := r.readRewind(ctx)
	if err != nil {
		return w, cp, rewind, err
	}
	if hasRewind && rewind.Before(start) {
		start = rewind
		r.log.Info().Time("since", rewind).Time("checkpoint", cp).Msg("reconcile: covering the gap the guardian found")
	}
	return Window{Since: start.UTC(), Until: until}, cp, rewind, nil
}
