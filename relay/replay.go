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

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
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
	ids, err := r.rdb.ZRangeByScore(ctx, keys.Failed(QueueOutbound), &redis.ZRangeBy{Min: from, Max: "+inf"}).Result()
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
	n, err := replayScript.Run(ctx, r.rdb, []string{keys.Message(rec.ID), keys.ConversationPending(rec.Conv), keys.Failed(QueueOutbound)},
		rec.ID, rec.Gen, reason).Int()
	if err != nil {
		return false, err
	}
	if n == 0 {
		return false, nil
	}
	if err := r.insp.DeleteTask(QueueOutbound, taskID(rec.ID, rec.Gen)); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		r.log.Debug().Err(err).Str("message_id", rec.ID).Msg("replay: old task not removed")
	}
	return true, nil
}

// StatusReport is the outbound part of GET /v1/status.
type StatusReport struct {
	Queue       QueueReport       `json:"queue"`
	Gate        GateReport        `json:"gate"`
	Credentials CredentialsReport `json:"credentials"`
	Failed      map[string]int    `json:"failed"` // kept failed messages by reason
	RateLimit   LimiterState      `json:"rate_limit"`
}

// QueueReport is the outbound asynq queue's size by task state.
type QueueReport struct {
	Name      string `json:"name"`
	Pending   int    `json:"pending"`
	Active    int    `json:"active"`
	Scheduled int    `json:"scheduled"`
	Retry     int    `json:"retry"`
	Archived  int    `json:"archived"`
	Paused    bool   `json:"paused"`
}

// maxFailedScan bounds how many failed messages Report reads to count
// reasons.
const maxFailedScan = 10000

// Report returns the outbound relay's state for GET /v1/status.
func (r *Relay) Report(ctx context.Context) (StatusReport, error) {
	rep := StatusReport{Queue: QueueReport{Name: QueueOutbound}, Failed: map[string]int{}}
	qs, err := r.insp.Queues()
	if err != nil {
		return rep, fmt.Errorf("outbound queue: %w", err)
	}
	if slices.Contains(qs, QueueOutbound) {
		qi, err := r.insp.GetQueueInfo(QueueOutbound)
		if err != nil {
			return rep, fmt.Errorf("outbound queue: %w", err)
		}
		rep.Queue = QueueReport{Name: QueueOutbound, Pending: qi.Pending, Active: qi.Active, Scheduled: qi.Scheduled,
			Retry: qi.Retry, Archived: qi.Archived, Paused: qi.Paused}
	}
	if rep.Gate, err = r.gateState(ctx); err != nil {
		return rep, err
	}
	if rep.Credentials, err = r.credentialsState(ctx); err != nil {
		return rep, err
	}
	if rep.RateLimit, err = r.lim.State(ctx); err != nil {
		return rep, err
	}
	ids, err := r.rdb.ZRange(ctx, keys.Failed(QueueOutbound), 0, maxFailedScan-1).Result()
	if err != nil {
		return rep, fmt.Errorf("failed messages: %w", err)
	}
	p := r.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = p.HGet(ctx, keys.Message(id), "reason")
	}
	if len(ids) > 0 {
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return rep, fmt.Errorf("failed messages: %w", err)
		}
	}
	for _, c := range cmds {
		if v, err := c.Result(); err == nil && v != "" {
			rep.Failed[v]++
		}
	}
	return rep, nil
}
