package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/queues"
)

// DiscardOptions selects the failed messages `deskrelay discard` drops.
type DiscardOptions struct {
	// Reason is "unauthorized", "invalid", or "" for every reason.
	Reason string
	// Before keeps messages failed before this time; zero: all.
	Before time.Time
	// DryRun lists what would be dropped without changing anything.
	DryRun bool
	// Out receives one line per message; nil: io.Discard.
	Out io.Writer
}

// DiscardSummary says what a discard did (or, dry, would do).
type DiscardSummary struct {
	Selected  int `json:"selected"`  // failed messages matching the options
	Discarded int `json:"discarded"` // dropped (0 when dry)
	Skipped   int `json:"skipped"`   // changed meanwhile (replayed…)
}

// Discard drops failed outbound messages for good, after a human decided
// they are not wanted: their records, their entries in the failed set and
// their archived asynq tasks. Their conversations are not affected (a
// failed message has left its conversation's order already).
func (r *Relay) Discard(ctx context.Context, opts DiscardOptions) (DiscardSummary, error) {
	var sum DiscardSummary
	out := orDiscard(opts.Out)
	ids, err := r.failedIDs(ctx, "discard", opts.Reason, time.Time{}, opts.Before)
	if err != nil {
		return sum, err
	}
	for _, id := range ids {
		rec, err := r.st.load(ctx, id)
		if errors.Is(err, errNoRecord) {
			// A failed-set entry without its record: nothing to keep.
			if !opts.DryRun {
				_ = r.rdb.ZRem(ctx, r.space.Failed(queues.Outbound), id).Err()
			}
			continue
		}
		if err != nil {
			return sum, fmt.Errorf("discard: %w", err)
		}
		if rec.State != StateFailed || (opts.Reason != "" && rec.Reason != opts.Reason) {
			continue
		}
		sum.Selected++
		verb := "discard"
		if opts.DryRun {
			verb = "would discard"
		}
		fmt.Fprintf(out, "%s %s conversation=%s position=%d reason=%s failed_at=%s last_error=%q\n",
			verb, rec.ID, rec.Conv, rec.Pos, rec.Reason, rec.DoneAt.UTC().Format(time.RFC3339), rec.LastError)
		if opts.DryRun {
			continue
		}
		ok, err := r.st.discard(ctx, rec)
		if err != nil {
			return sum, fmt.Errorf("discard %s: %w", rec.ID, err)
		}
		if !ok {
			sum.Skipped++
			continue
		}
		sum.Discarded++
		if err := r.insp.DeleteTask(queues.Outbound, r.taskID(rec.ID, rec.Gen)); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			r.log.Warn().Err(err).Str("message_id", rec.ID).Msg("discard: archived task not removed")
		}
	}
	r.log.Info().Int("selected", sum.Selected).Int("discarded", sum.Discarded).Int("skipped", sum.Skipped).Bool("dry_run", opts.DryRun).Msg("discard")
	return sum, nil
}
