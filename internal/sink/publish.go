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
	// Space is the account whose events the Publisher publishes: its
	// events carry the account's name (events.Event.Account) and, for
	// every account but the default, ids of their own
	// (events.AccountEventID); its keys hold the ledger, the orders and
	// the last statuses. Default keys.Default.
	Space keys.Space
	// Asynq and Inspector, when set, are shared with other components and
	// not closed; nil: the Publisher makes its own on the Redis client.
	Asynq     *asynq.Client
	Inspector *asynq.Inspector
}

func (c PublisherConfig) withDefaults() PublisherConfig {
	c.Space = spaceOr(c.Space)
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

// Publisher turns one account's events into durable sink deliveries: it
// gives each event its account (Event.Account, the account's event id),
// applies the forward rules, drops what the ledger has seen, and enqueues a
// TaskDeliver task on the inbound queue. The account's webhook receiver
// and reconciler use the same Publisher, so the same event found by both is
// delivered once. It holds no goroutine; safe for concurrent use.
type Publisher struct {
	space   keys.Space
	rdb     redis.UniversalClient
	tickets *tickets.Tickets
	client  *asynq.Client
	insp    *asynq.Inspector
	ledger  *Ledger
	cfg     PublisherConfig
}

// NewPublisher returns the Publisher of account cfg.Space on rdb (which it
// shares with asynq and does not close). tickets is read in cfg.Space
// (tickets.WithSpace).
func NewPublisher(rdb redis.UniversalClient, tickets *tickets.Tickets, cfg PublisherConfig) *Publisher {
	cfg = cfg.withDefaults()
	if tickets.Space() != cfg.Space {
		tickets = tickets.WithSpace(cfg.Space)
	}
	p := &Publisher{
		space:   cfg.Space,
		rdb:     rdb,
		tickets: tickets,
		client:  cfg.Asynq,
		insp:    cfg.Inspector,
		ledger:  NewLedgerIn(rdb, cfg.Space, cfg.LedgerRetention),
		cfg:     cfg,
	}
	if p.client == nil {
		p.client = asynq.NewClientFromRedisClient(rdb)
	}
	if p.insp == nil {
		p.insp = asynq.NewInspectorFromRedisClient(rdb)
	}
	return p
}

// Ledger returns the Publisher's dedupe ledger.
func (p *Publisher) Ledger() *Ledger { return p.ledger }

// Space is the key space of the Publisher's account.
func (p *Publisher) Space() keys.Space { return p.space }

// own gives ev the Publisher's account: its name and, for every account but
// the default, the account's event id. An event already of the account is
// returned as it is; one of another account is an error. Every event
// published, checked or replayed passes here.
func (p *Publisher) own(ev events.Event) (events.Event, error) {
	account := p.space.Account()
	switch ev.Account {
	case "":
		ev.Account = account
		ev.ID = events.AccountEventID(account, ev.ID)
	case account:
	default:
		return ev, fmt.Errorf("event %q of account %q given to account %q's publisher", ev.ID, ev.Account, account)
	}
	return ev, nil
}

// EventID is the id event id (as events.CommentEventID and
// events.StatusEventID build it) has in the Publisher's account.
func (p *Publisher) EventID(id string) string { return events.AccountEventID(p.space.Account(), id) }

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
	ev, err := p.own(ev)
	if err != nil {
		return false, err
	}
	queued, err := p.requeue(ctx, ev.ID, DeliverPayload{Event: ev, PublishedAt: p.cfg.Now().UTC()})
	if !queued || err != nil {
		return queued, err
	}
	if err := orderPut(ctx, p.rdb, p.space, ev, p.ledger.retention).Err(); err != nil {
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
	if err := enqueueDelivery(ctx, p.client, p.space, id, pl, p.cfg.TaskTimeout); err != nil {
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func (p *Publisher) enqueue(ctx context.Context, ev events.Event) error {
	return enqueueDelivery(ctx, p.client, p.space, ev.ID, DeliverPayload{Event: ev, PublishedAt: p.cfg.Now().UTC()}, p.cfg.TaskTimeout)
}

// enqueueDelivery makes the TaskDeliver task of event id of account sp
// (task id DeliverTaskID); asynq.ErrTaskIDConflict, unwrapped, says it
// exists.
func enqueueDelivery(ctx context.Context, client *asynq.Client, sp keys.Space, id string, pl DeliverPayload, timeout time.Duration) error {
	pl.Account = sp.Account()
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
		orderJoin(ctx, pl, p.space, ev, p.ledger.retention)
		return nil
	})
	return err
}

// lastStatus reads the last status delivered for a ticket and the newest
// instant seen for it (at = -1 when none).
func (p *Publisher) lastStatus(ctx context.Context, ticketID int64) (status string, at int64, err error) {
	last, err := p.rdb.HMGet(ctx, p.space.TicketLastStatus(ticketID), "status", "at").Result()
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
	err := statusGate.Run(ctx, p.rdb, []string{p.space.TicketLastStatus(ev.TicketID)},
		ev.Status, ev.OccurredAt.Unix(), int64(p.ledger.retention/time.Second), flag).Err()
	if err != nil {
		return fmt.Errorf("record status of ticket %d: %w", ev.TicketID, err)
	}
	return nil
}

// decide holds the forward rules that apply when an event is found; the
// status rule that needs delivery order is StatusGate.
func (p *Publisher) decide(ctx context.Context, ev events.Event) (events.Outcome, error) {
	ev, err := p.own(ev)
	out := events.Outcome{Event: ev}
	if err != nil {
		return out, err
	}
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
