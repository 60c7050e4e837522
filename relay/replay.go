package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/queues"
)

// ReplaySummary says what a replay did (or, dry, would do).
type ReplaySummary struct {
	Selected      int            `json:"selected"`      // failed messages matching the options
	Replayed      int            `json:"replayed"`      // put back into delivery (0 when dry)
	Skipped       int            `json:"skipped"`       // changed meanwhile (already replayed, delivered…)
	Conversations int            `json:"conversations"` // distinct conversations selected
	ByReason      map[string]int `json:"by_reason"`
}

// Replay puts failed outbound messages back into delivery, conversation by
// conversation in position order, and writes one line per message to
// opts.Out (`deskrelay replay`). A replayed message gets a new task (its
// archived one is removed) and is delivered before later messages of its
// conversation still pending.
func (r *Relay) Replay(ctx context.Context, opts ReplayOptions) (ReplaySummary, error) {
	sum := ReplaySummary{ByReason: map[string]int{}}
	out := orDiscard(opts.Out)
	ids, err := r.failedIDs(ctx, "replay", opts.Reason, opts.Since, time.Time{})
	if err != nil {
		return sum, err
	}
	var recs []*record
	for _, id := range ids {
		rec, err := r.st.load(ctx, id)
		if errors.Is(err, errNoRecord) {
			continue
		}
		if err != nil {
			return sum, fmt.Errorf("replay: %w", err)
		}
		if rec.State != StateFailed || (opts.Reason != "" && rec.Reason != opts.Reason) {
			continue
		}
		recs = append(recs, rec)
	}
	slices.SortFunc(recs, func(a, b *record) int {
		return cmp.Or(cmp.Compare(a.Conv, b.Conv), cmp.Compare(a.Pos, b.Pos), cmp.Compare(a.ID, b.ID))
	})
	convs := map[string]bool{}
	for _, rec := range recs {
		sum.Selected++
		sum.ByReason[rec.Reason]++
		convs[rec.Conv] = true
		verb := "replay"
		if opts.DryRun {
			verb = "would replay"
		}
		fmt.Fprintf(out, "%s %s conversation=%s position=%d reason=%s failed_at=%s last_error=%q\n",
			verb, rec.ID, rec.Conv, rec.Pos, rec.Reason, rec.DoneAt.UTC().Format(time.RFC3339), rec.LastError)
		if opts.DryRun {
			continue
		}
		ok, err := r.replayOne(ctx, rec, opts.Reason)
		if err != nil {
			return sum, fmt.Errorf("replay %s: %w", rec.ID, err)
		}
		if ok {
			sum.Replayed++
		} else {
			sum.Skipped++
		}
	}
	sum.Conversations = len(convs)
	verb := "replayed"
	if opts.DryRun {
		verb = "would replay"
	}
	fmt.Fprintf(out, "%s %d of %d failed messages in %d conversations (%d skipped)\n", verb, sum.Replayed, sum.Selected, sum.Conversations, sum.Skipped)
	r.log.Info().Int("selected", sum.Selected).Int("replayed", sum.Replayed).Int("skipped", sum.Skipped).Bool("dry_run", opts.DryRun).Msg("replay")
	return sum, nil
}

// replayOne enqueues the next generation's task first, then flips the
// record (the task waits for the flip); a failure in between is completed by
// running the replay again.
func (r *Relay) replayOne(ctx context.Context, rec *record, reason string) (bool, error) {
	if err := r.retellOutcome(ctx, rec, rec.Gen); err != nil { // no failure goes untold (outcome.go)
		return false, err
	}
	// The new task parks (its release paces a replay of many messages to
	// the account's budget, off the shared pending list), once the record
	// is queued again.
	if err := r.enqueueTask(ctx, rec.ID, rec.Gen+1, true); err != nil {
		return false, err
	}
	n, err := replayScript.Run(ctx, r.rdb, []string{r.space.Message(rec.ID), r.space.ConversationPending(rec.Conv), r.space.Failed(queues.Outbound), r.space.OutboundQueued()},
		rec.ID, rec.Gen, reason).Int()
	if err != nil {
		return false, err
	}
	if n == 0 {
		return false, nil
	}
	r.parkNew(ctx, rec.ID, rec.Gen+1)
	if err := r.deleteTask(rec.ID, rec.Gen); err != nil {
		r.log.Debug().Err(err).Str("message_id", rec.ID).Msg("replay: old task not removed")
	}
	return true, nil
}

// failedIDs checks a --reason and lists the ids of the messages failed in
// [since, before) (a zero bound: unbounded), oldest failure first; op
// names the command in errors.
func (r *Relay) failedIDs(ctx context.Context, op, reason string, since, before time.Time) ([]string, error) {
	switch reason {
	case "", ReasonUnauthorized, ReasonInvalid:
	default:
		return nil, fmt.Errorf("%s: unknown reason %q (want unauthorized or invalid)", op, reason)
	}
	from, to := "-inf", "+inf"
	if !since.IsZero() {
		from = strconv.FormatInt(since.UnixMilli(), 10)
	}
	if !before.IsZero() {
		to = "(" + strconv.FormatInt(before.UnixMilli(), 10)
	}
	ids, err := r.rdb.ZRangeByScore(ctx, r.space.Failed(queues.Outbound), &redis.ZRangeBy{Min: from, Max: to}).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: list failed messages: %w", op, err)
	}
	return ids, nil
}

// orDiscard is w, or io.Discard when w is nil.
func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
