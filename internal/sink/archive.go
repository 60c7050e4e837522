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

// FailedEvent is a sink delivery kept after it failed for good: a ticket
// event (Event), or a message outcome event (Outcome, when set; Event is
// then empty).
type FailedEvent struct {
	Event    events.Event
	Outcome  *Outcome
	Reason   string
	Error    string
	FailedAt time.Time
}

// Failed lists account sp's kept failed sink deliveries (the zero Space:
// keys.Default's), oldest failure first.
func Failed(ctx context.Context, rdb redis.UniversalClient, sp keys.Space, since time.Time) ([]FailedEvent, error) {
	sp = spaceOr(sp)
	lo := "-inf"
	if !since.IsZero() {
		lo = strconv.FormatInt(since.UnixMilli(), 10)
	}
	ids, err := rdb.ZRangeByScore(ctx, sp.Failed(queues.Inbound), &redis.ZRangeBy{Min: lo, Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("list failed sink deliveries: %w", err)
	}
	out := make([]FailedEvent, 0, len(ids))
	for _, id := range ids {
		h, err := rdb.HGetAll(ctx, sp.InboundFailedEvent(id)).Result()
		if err != nil {
			return nil, fmt.Errorf("read failed event %s: %w", id, err)
		}
		var fe FailedEvent
		if o, ok := h["outcome"]; ok {
			fe.Outcome = &Outcome{}
			err = json.Unmarshal([]byte(o), fe.Outcome)
		} else {
			err = json.Unmarshal([]byte(h["event"]), &fe.Event)
		}
		if err != nil {
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

// Replay puts the failed sink deliveries of pub's account back into
// delivery, in occurred_at order per conversation (e.g. after the platform
// fixed its endpoint).
func Replay(ctx context.Context, rdb redis.UniversalClient, pub *Publisher, opts ReplayOptions) (ReplayReport, error) {
	var rep ReplayReport
	sp := pub.space
	failed, err := Failed(ctx, rdb, sp, opts.Since)
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
		_, aconv, aat := sel[i].place()
		_, bconv, bat := sel[j].place()
		if aconv != bconv {
			return aconv < bconv
		}
		return aat.Before(bat)
	})
	rep.Found = len(sel)
	printf := func(format string, args ...any) {
		if opts.Out != nil {
			_, _ = fmt.Fprintf(opts.Out, format, args...)
		}
	}
	var errs []error
	for _, fe := range sel {
		id, conv, _ := fe.place()
		if opts.DryRun {
			rep.Replayed++
			printf("would replay %s (conversation %s, failed %s: %s)\n", id, conv, fe.FailedAt.Format(time.RFC3339), fe.Reason)
			continue
		}
		queued, err := fe.redeliver(ctx, pub)
		if err != nil {
			errs = append(errs, err)
			printf("error %s: %v\n", id, err)
			continue
		}
		if !queued {
			rep.Waiting++
		} else {
			rep.Replayed++
		}
		if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.ZRem(ctx, sp.Failed(queues.Inbound), id)
			p.Del(ctx, sp.InboundFailedEvent(id))
			return nil
		}); err != nil {
			errs = append(errs, fmt.Errorf("forget failed event %s: %w", id, err))
		}
		printf("replayed %s (conversation %s)\n", id, conv)
	}
	return rep, errors.Join(errs...)
}

// place is fe's event id, conversation and instant.
func (fe FailedEvent) place() (id, conv string, at time.Time) {
	if o := fe.Outcome; o != nil {
		return o.ID, o.ConversationID, o.OccurredAt
	}
	return fe.Event.ID, fe.Event.ConversationID, fe.Event.OccurredAt
}

func (fe FailedEvent) redeliver(ctx context.Context, pub *Publisher) (bool, error) {
	if fe.Outcome != nil {
		return pub.RedeliverOutcome(ctx, *fe.Outcome)
	}
	return pub.Redeliver(ctx, fe.Event)
}

// archive keeps a failed event for Replay and lets the rest of its
// conversation go on.
func (d *Deliverer) archive(ctx context.Context, pub *Publisher, ev events.Event, reason string, cause error) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	now := d.cfg.Now()
	_, err = d.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, pub.space.InboundFailedEvent(ev.ID), "event", b, "reason", reason, "error", cause.Error(), "failed_at", now.UnixMilli())
		p.ZAdd(ctx, pub.space.Failed(queues.Inbound), redis.Z{Score: float64(now.UnixMilli()), Member: ev.ID})
		orderLeave(ctx, p, pub.space, ev.ConversationID, ev.ID)
		pub.ledger.markIn(ctx, p, ev.ID, now)
		return nil
	})
	return err
}

// archiveOutcome keeps a failed outcome event for Replay.
func (d *Deliverer) archiveOutcome(ctx context.Context, pub *Publisher, o Outcome, reason string, cause error) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	now := d.cfg.Now()
	_, err = d.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, pub.space.InboundFailedEvent(o.ID), "outcome", b, "reason", reason, "error", cause.Error(), "failed_at", now.UnixMilli())
		p.ZAdd(ctx, pub.space.Failed(queues.Inbound), redis.Z{Score: float64(now.UnixMilli()), Member: o.ID})
		pub.ledger.markIn(ctx, p, o.ID, now)
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
	// Space is the account whose failed deliveries are dropped (the zero
	// Space: keys.Default).
	Space keys.Space
}

// Discard drops failed sink deliveries for good, after a human decided they
// are not wanted: the kept event, its entry in the failed set and its
// archived asynq task (insp). The event ledger keeps the id, so that the
// event is not published again. It returns how many it dropped (or would).
func Discard(ctx context.Context, rdb redis.UniversalClient, insp *asynq.Inspector, opts DiscardOptions) (int, error) {
	sp := spaceOr(opts.Space)
	failed, err := Failed(ctx, rdb, sp, time.Time{})
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
		id, conv, _ := fe.place()
		verb := "discarded"
		if opts.DryRun {
			verb = "would discard"
		}
		if opts.Out != nil {
			_, _ = fmt.Fprintf(opts.Out, "%s %s (conversation %s, failed %s: %s)\n", verb, id, conv, fe.FailedAt.Format(time.RFC3339), fe.Reason)
		}
		if opts.DryRun {
			continue
		}
		if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.ZRem(ctx, sp.Failed(queues.Inbound), id)
			p.Del(ctx, sp.InboundFailedEvent(id))
			return nil
		}); err != nil {
			errs = append(errs, fmt.Errorf("discard failed event %s: %w", id, err))
			continue
		}
		if err := insp.DeleteTask(queues.Inbound, DeliverTaskID(id)); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			errs = append(errs, fmt.Errorf("discard failed event %s: archived task: %w", id, err))
		}
	}
	return n, errors.Join(errs...)
}
