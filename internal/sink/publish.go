package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/tickets"
)

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// ForwardPrivate also forwards agents' private notes
	//. Default false.
	ForwardPrivate bool
	// LedgerRetention is how long event ids are remembered for dedupe.
	// Default DefaultLedgerRetention (14 days).
	LedgerRetention time.Duration
	// TaskTimeout bounds one delivery attempt (asynq Timeout); the sink
	// HTTP client's timeout must stay well below it. Default 1 minute.
	TaskTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c PublisherConfig) withDefaults() PublisherConfig {
	if c.LedgerRetention <= 0 {
		c.LedgerRetention = DefaultLedgerRetention
	}
	if c.TaskTimeout <= 0 {
		c.TaskTimeout = DefaultTaskTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Publisher turns events into durable sink deliveries: it applies the
// forward rules, drops what the ledger has seen, and enqueues a TaskDeliver
// task on the inbound queue. The webhook receiver and the reconciler use the
// same Publisher, so the same event found by both is delivered once.
// Safe for concurrent use.
type Publisher struct {
	rdb     redis.UniversalClient
	tickets *tickets.Tickets
	client  *asynq.Client
	insp    *asynq.Inspector
	ledger  *Ledger
	cfg     PublisherConfig
}

// NewPublisher returns a Publisher on rdb (which it shares with asynq and
// does not close).
func NewPublisher(rdb redis.UniversalClient, tickets *tickets.Tickets, cfg PublisherConfig) *Publisher {
	cfg = cfg.withDefaults()
	return &Publisher{
		rdb:     rdb,
		tickets: tickets,
		client:  asynq.NewClientFromRedisClient(rdb),
		insp:    asynq.NewInspectorFromRedisClient(rdb),
		ledger:  NewLedger(rdb, cfg.LedgerRetention),
		cfg:     cfg,
	}
}

// Ledger returns the Publisher's dedupe ledger.
func (p *Publisher) Ledger() *Ledger { return p.ledger }

// Check applies the rules and the ledger to ev and says what Publish would
// do, writing nothing (--dry-run).
func (p *Publisher) Check(ctx context.Context, ev events.Event) (events.Outcome, error) {
	return p.decide(ctx, ev)
}

// Publish applies the rules and the ledger to ev and, when it is new and
// forwardable, makes it a durable delivery task. The order of writes is
// crash-safe: the task is created first (its id, DeliverTaskID, is the
// atomic claim), and only then is the event marked in the ledger, put in its
// conversation's delivery order and recorded as the ticket's last status.
// An error means nothing may have been written: publishing again is safe.
func (p *Publisher) Publish(ctx context.Context, ev events.Event) (events.Outcome, error) {
	out, err := p.decide(ctx, ev)
	if err != nil {
		return out, err
	}
	ev = out.Event
	if out.Result != events.ResultEnqueued {
		return out, nil
	}
	if err := p.enqueue(ctx, ev); err != nil {
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			out = events.Outcome{Result: events.ResultDuplicate, Reason: "task", Event: ev}
			return out, p.ledger.Mark(ctx, ev.ID)
		}
		return out, err
	}
	if err := p.afterEnqueue(ctx, ev); err != nil {
		// the task exists and its handler repairs the order entry and the
		// ledger; report success but say what failed
		return out, fmt.Errorf("event %s enqueued, bookkeeping failed: %w", ev.ID, err)
	}
	return out, nil
}

// Redeliver enqueues ev again without rules or ledger (replay of a failed
// delivery): it removes the archived task of the earlier attempt, if any.
// It returns false when a delivery task for ev is already waiting.
func (p *Publisher) Redeliver(ctx context.Context, ev events.Event) (bool, error) {
	queued, err := p.requeue(ctx, ev.ID, DeliverPayload{Event: ev, PublishedAt: p.cfg.Now().UTC()})
	if !queued || err != nil {
		return queued, err
	}
	if err := orderPut(ctx, p.rdb, ev, p.ledger.retention).Err(); err != nil {
		return true, fmt.Errorf("replay %s: order: %w", ev.ID, err)
	}
	return true, nil
}

// RedeliverOutcome is Redeliver for a message outcome event (which takes no
// place in a conversation's order).
func (p *Publisher) RedeliverOutcome(ctx context.Context, o Outcome) (bool, error) {
	return p.requeue(ctx, o.ID, DeliverPayload{Outcome: &o, PublishedAt: p.cfg.Now().UTC()})
}

// requeue makes event id's delivery task anew, with payload pl, removing
// the archived task of an earlier attempt; false: a task is waiting.
func (p *Publisher) requeue(ctx context.Context, id string, pl DeliverPayload) (bool, error) {
	if err := p.insp.DeleteTask(queues.Inbound, DeliverTaskID(id)); err != nil &&
		!errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		// an active or pending task cannot be deleted: it is on its way
		if info, ierr := p.insp.GetTaskInfo(queues.Inbound, DeliverTaskID(id)); ierr == nil && info.State != asynq.TaskStateArchived {
			return false, nil
		}
		return false, fmt.Errorf("replay %s: remove archived task: %w", id, err)
	}
	if err := enqueueDelivery(ctx, p.client, id, pl, p.cfg.TaskTimeout); err != nil {
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func (p *Publisher) enqueue(ctx context.Context, ev events.Event) error {
	return enqueueDelivery(ctx, p.client, ev.ID, DeliverPayload{Event: ev, PublishedAt: p.cfg.Now().UTC()}, p.cfg.TaskTimeout)
}

// enqueueDelivery makes the TaskDeliver task of event id (task id
// DeliverTaskID); asynq.ErrTaskIDConflict, unwrapped, says it exists.
func enqueueDelivery(ctx context.Context, client *asynq.Client, id string, pl DeliverPayload, timeout time.Duration) error {
	b, err := json.Marshal(pl)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", id, err)
	}
	_, err = client.EnqueueContext(ctx, asynq.NewTask(TaskDeliver, b),
		asynq.Queue(queues.Inbound),
		asynq.TaskID(DeliverTaskID(id)),
		asynq.MaxRetry(queues.MaxRetry),
		asynq.Timeout(timeout),
	)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue event %s: %w", id, err)
	}
	return err
}

func (p *Publisher) afterEnqueue(ctx context.Context, ev events.Event) error {
	_, err := p.rdb.TxPipelined(ctx, func(pl redis.Pipeliner) error {
		p.ledger.markIn(ctx, pl, ev.ID, p.cfg.Now())
		orderJoin(ctx, pl, ev, p.ledger.retention)
		return nil
	})
	return err
}

// lastStatus reads the last status delivered for a ticket and the newest
// instant seen for it (at = -1 when none).
func (p *Publisher) lastStatus(ctx context.Context, ticketID int64) (status string, at int64, err error) {
	last, err := p.rdb.HMGet(ctx, keys.Default.TicketLastStatus(ticketID), "status", "at").Result()
	if err != nil {
		return "", 0, fmt.Errorf("look up last status of ticket %d: %w", ticketID, err)
	}
	status, _ = last[0].(string)
	at = -1
	if s, ok := last[1].(string); ok {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			at = n
		}
	}
	return status, at, nil
}

// StatusGate is the status rule at delivery time, when the events of a
// conversation go out in occurred_at order: a status change is delivered
// only if it is newer than the last one delivered for its ticket and
// differs from it. It returns "" (deliver) or SkipStatusStale /
// SkipStatusUnchanged (drop; an unchanged status seen later still moves the
// ticket's instant forward, so that an older change found afterwards is
// recognised as stale). Comment events always pass.
func (p *Publisher) StatusGate(ctx context.Context, ev events.Event) (skip string, err error) {
	if ev.Type != events.TypeStatusChanged {
		return "", nil
	}
	status, at, err := p.lastStatus(ctx, ev.TicketID)
	if err != nil {
		return "", err
	}
	t := ev.OccurredAt.Unix()
	switch {
	case at >= 0 && t < at:
		return events.SkipStatusStale, nil
	case ev.Status == status:
		if t > at {
			return events.SkipStatusUnchanged, p.setStatus(ctx, ev, true)
		}
		return events.SkipStatusUnchanged, nil
	}
	return "", nil
}

// StatusDelivered records ev as the last status delivered for its ticket
// (unless a newer one is recorded). Comment events are ignored.
func (p *Publisher) StatusDelivered(ctx context.Context, ev events.Event) error {
	if ev.Type != events.TypeStatusChanged {
		return nil
	}
	return p.setStatus(ctx, ev, false)
}

// statusGate sets the ticket's last status to ARGV[1] at ARGV[2] (unix
// seconds) unless a newer one is recorded; with ARGV[4] = "1" only the
// instant moves. ARGV[3] is the retention in seconds.
var statusGate = redis.NewScript(`
local at = redis.call('HGET', KEYS[1], 'at')
if at and tonumber(at) > tonumber(ARGV[2]) then return 0 end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'at', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'status', ARGV[1], 'at', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1`)

func (p *Publisher) setStatus(ctx context.Context, ev events.Event, onlyInstant bool) error {
	flag := "0"
	if onlyInstant {
		flag = "1"
	}
	err := statusGate.Run(ctx, p.rdb, []string{keys.Default.TicketLastStatus(ev.TicketID)},
		ev.Status, ev.OccurredAt.Unix(), int64(p.ledger.retention/time.Second), flag).Err()
	if err != nil {
		return fmt.Errorf("record status of ticket %d: %w", ev.TicketID, err)
	}
	return nil
}

// decide holds the forward rules that apply when an event is found; the
// status rule that needs delivery order is StatusGate.
func (p *Publisher) decide(ctx context.Context, ev events.Event) (events.Outcome, error) {
	out := events.Outcome{Event: ev}
	if err := ev.Validate(); err != nil {
		return out, fmt.Errorf("event %q: %w", ev.ID, err)
	}
	conv, ok, err := p.tickets.ConversationOf(ctx, ev.TicketID)
	if err != nil {
		return out, err
	}
	if !ok {
		out.Result, out.Reason = events.ResultSkipped, events.SkipUnmanaged
		return out, nil
	}
	out.Event.ConversationID = conv
	skip := func(reason string) (events.Outcome, error) {
		out.Result, out.Reason = events.ResultSkipped, reason
		return out, nil
	}
	switch ev.Type {
	case events.TypeCommentAdded:
		own, err := p.tickets.IsOwnComment(ctx, ev.Comment.ID)
		if err != nil {
			return out, err
		}
		switch {
		case own:
			return skip(events.SkipOwnComment)
		case ev.Comment.Author.Role != events.RoleAgent:
			return skip(events.SkipEndUser)
		case !ev.Comment.Public && !p.cfg.ForwardPrivate:
			return skip(events.SkipPrivate)
		}
	case events.TypeStatusChanged:
		if ev.Status == "new" {
			return skip(events.SkipStatusInitial)
		}
		// only what is certain now: older than a status already delivered.
		// "Unchanged" needs delivery order (StatusGate): an event still on
		// its way may change the status in between.
		_, at, err := p.lastStatus(ctx, ev.TicketID)
		if err != nil {
			return out, err
		}
		if at >= 0 && ev.OccurredAt.Unix() < at {
			return skip(events.SkipStatusStale)
		}
	}
	seen, err := p.ledger.Seen(ctx, ev.ID)
	if err != nil {
		return out, err
	}
	if seen {
		out.Result, out.Reason = events.ResultDuplicate, "ledger"
		return out, nil
	}
	out.Result = events.ResultEnqueued
	return out, nil
}
