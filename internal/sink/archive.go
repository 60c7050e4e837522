package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
)

// ReplayOptions selects failed sink deliveries to send again.
type ReplayOptions struct {
	// Reason keeps only events failed with this reason (ReasonUnauthorized,
	// ReasonGone); empty: all.
	Reason string
	// Since keeps only events failed at or after this time; zero: all.
	Since time.Time
	// DryRun lists what would be replayed and changes nothing.
	DryRun bool
	// Out receives one line per event; nil: nothing is printed.
	Out io.Writer
}

// ReplayReport counts what Replay did.
type ReplayReport struct {
	Found    int // failed events matching the options
	Replayed int // put back into delivery (or would be, with DryRun)
	Waiting  int // a delivery task for the event already existed
}

// FailedEvent is a sink delivery kept after it failed for good.
type FailedEvent struct {
	Event    events.Event
	Reason   string
	Error    string
	FailedAt time.Time
}

// Failed lists the kept failed sink deliveries, oldest failure first.
func Failed(ctx context.Context, rdb redis.UniversalClient, since time.Time) ([]FailedEvent, error) {
	lo := "-inf"
	if !since.IsZero() {
		lo = strconv.FormatInt(since.UnixMilli(), 10)
	}
	ids, err := rdb.ZRangeByScore(ctx, keys.Default.Failed(queues.Inbound), &redis.ZRangeBy{Min: lo, Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("list failed sink deliveries: %w", err)
	}
	out := make([]FailedEvent, 0, len(ids))
	for _, id := range ids {
		h, err := rdb.HGetAll(ctx, keys.Default.InboundFailedEvent(id)).Result()
		if err != nil {
			return nil, fmt.Errorf("read failed event %s: %w", id, err)
		}
		var fe FailedEvent
		if err := json.Unmarshal([]byte(h["event"]), &fe.Event); err != nil {
			return nil, fmt.Errorf("failed event %s: record unreadable: %w", id, err)
		}
		fe.Reason, fe.Error = h["reason"], h["error"]
		if ms, err := strconv.ParseInt(h["failed_at"], 10, 64); err == nil {
			fe.FailedAt = time.UnixMilli(ms).UTC()
		}
		out = append(out, fe)
	}
	return out, nil
}

// Replay puts failed sink deliveries back into delivery, in occurred_at
// order per conversation (e.g. after the platform fixed its endpoint).
func Replay(ctx context.Context, rdb redis.UniversalClient, pub *Publisher, opts ReplayOptions) (ReplayReport, error) {
	var rep ReplayReport
	failed, err := Failed(ctx, rdb, opts.Since)
	if err != nil {
		return rep, err
	}
	sel := failed[:0]
	for _, fe := range failed {
		if opts.Reason == "" || fe.Reason == opts.Reason {
			sel = append(sel, fe)
		}
	}
	sort.SliceStable(sel, func(i, j int) bool {
		a, b := sel[i].Event, sel[j].Event
		if a.ConversationID != b.ConversationID {
			return a.ConversationID < b.ConversationID
		}
		return a.OccurredAt.Before(b.OccurredAt)
	})
	rep.Found = len(sel)
	printf := func(format string, args ...any) {
		if opts.Out != nil {
			_, _ = fmt.Fprintf(opts.Out, format, args...)
		}
	}
	var errs []error
	for _, fe := range sel {
		ev := fe.Event
		if opts.DryRun {
			rep.Replayed++
			printf("would replay %s (conversation %s, failed %s: %s)\n", ev.ID, ev.ConversationID, fe.FailedAt.Format(time.RFC3339), fe.Reason)
			continue
		}
		queued, err := pub.Redeliver(ctx, ev)
		if err != nil {
			errs = append(errs, err)
			printf("error %s: %v\n", ev.ID, err)
			continue
		}
		if !queued {
			rep.Waiting++
		} else {
			rep.Replayed++
		}
		if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.ZRem(ctx, keys.Default.Failed(queues.Inbound), ev.ID)
			p.Del(ctx, keys.Default.InboundFailedEvent(ev.ID))
			return nil
		}); err != nil {
			errs = append(errs, fmt.Errorf("forget failed event %s: %w", ev.ID, err))
		}
		printf("replayed %s (conversation %s)\n", ev.ID, ev.ConversationID)
	}
	return rep, errors.Join(errs...)
}

// archive keeps a failed event for Replay and lets the rest of its
// conversation go on.
func (d *Deliverer) archive(ctx context.Context, ev events.Event, reason string, cause error) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	now := d.cfg.Now()
	_, err = d.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, keys.Default.InboundFailedEvent(ev.ID), "event", b, "reason", reason, "error", cause.Error(), "failed_at", now.UnixMilli())
		p.ZAdd(ctx, keys.Default.Failed(queues.Inbound), redis.Z{Score: float64(now.UnixMilli()), Member: ev.ID})
		orderLeave(ctx, p, ev.ConversationID, ev.ID)
		d.pub.ledger.markIn(ctx, p, ev.ID, now)
		return nil
	})
	return err
}

// DiscardOptions selects failed sink deliveries to drop for good.
type DiscardOptions struct {
	// Reason keeps only events failed with this reason (ReasonUnauthorized,
	// ReasonGone); empty: all.
	Reason string
	// Before keeps only events failed before this time; zero: all.
	Before time.Time
	// DryRun lists what would be dropped and changes nothing.
	DryRun bool
	// Out receives one line per event; nil: nothing is printed.
	Out io.Writer
}

// Discard drops failed sink deliveries for good, after a human decided they
// are not wanted: the kept event, its entry in the failed set and its
// archived asynq task (insp). The event ledger keeps the id, so that the
// event is not published again. It returns how many it dropped (or would).
func Discard(ctx context.Context, rdb redis.UniversalClient, insp *asynq.Inspector, opts DiscardOptions) (int, error) {
	failed, err := Failed(ctx, rdb, time.Time{})
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, fe := range failed {
		if (opts.Reason != "" && fe.Reason != opts.Reason) || (!opts.Before.IsZero() && !fe.FailedAt.Before(opts.Before)) {
			continue
		}
		n++
		verb := "discarded"
		if opts.DryRun {
			verb = "would discard"
		}
		if opts.Out != nil {
			_, _ = fmt.Fprintf(opts.Out, "%s %s (conversation %s, failed %s: %s)\n", verb, fe.Event.ID, fe.Event.ConversationID, fe.FailedAt.Format(time.RFC3339), fe.Reason)
		}
		if opts.DryRun {
			continue
		}
		if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.ZRem(ctx, keys.Default.Failed(queues.Inbound), fe.Event.ID)
			p.Del(ctx, keys.Default.InboundFailedEvent(fe.Event.ID))
			return nil
		}); err != nil {
			errs = append(errs, fmt.Errorf("discard failed event %s: %w", fe.Event.ID, err))
			continue
		}
		if err := insp.DeleteTask(queues.Inbound, DeliverTaskID(fe.Event.ID)); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			errs = append(errs, fmt.Errorf("discard failed event %s: archived task: %w", fe.Event.ID, err))
		}
	}
	return n, errors.Join(errs...)
}
