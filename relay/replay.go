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

	"github.com/deskrelay/deskrelay/internal/keys"
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
	switch opts.Reason {
	case "", ReasonUnauthorized, ReasonInvalid:
	default:
		return sum, fmt.Errorf("replay: unknown reason %q (want unauthorized or invalid)", opts.Reason)
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	from := "-inf"
	if !opts.Since.IsZero() {
		from = strconv.FormatInt(opts.Since.UnixMilli(), 10)
	}
	ids, err := r.rdb.ZRangeByScore(ctx, keys.Default.Failed(queues.Outbound), &redis.ZRangeBy{Min: from, Max: "+inf"}).Result()
	if err != nil {
		return sum, fmt.Errorf("replay: list failed messages: %w", err)
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
	if err := r.enqueueTask(ctx, rec.ID, rec.Gen+1); err != nil {
		return false, err
	}
	n, err := replayScript.Run(ctx, r.rdb, []string{keys.Default.Message(rec.ID), keys.Default.ConversationPending(rec.Conv), keys.Default.Failed(queues.Outbound)},
		rec.ID, rec.Gen, reason).Int()
	if err != nil {
		return false, err
	}
	if n == 0 {
		return false, nil
	}
	if err := r.deleteTask(rec.ID, rec.Gen); err != nil {
		r.log.Debug().Err(err).Str("message_id", rec.ID).Msg("replay: old task not removed")
	}
	return true, nil
}
