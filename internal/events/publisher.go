package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/relay"
)

// TaskDeliver is the asynq task type that delivers one Event to the sink
// (payload DeliverPayload, queue relay.QueueInbound, id DeliverTaskID);
// inbound registers its handler.
const TaskDeliver = "inbound:deliver"

// DefaultTaskTimeout bounds one delivery attempt.
const DefaultTaskTimeout = time.Minute

// DeliverTaskID is the asynq task id of an event's delivery: at most one
// such task exists at a time.
func DeliverTaskID(eventID string) string { return "deliver:" + eventID }

// DeliverPayload is the payload of a TaskDeliver task.
type DeliverPayload struct {
	Event       Event     `json:"event"`
	PublishedAt time.Time `json:"published_at"`
}

// Result is what Publish did with an event.
type Result string

// Results of Publish and Check.
const (
	ResultEnqueued  Result = "enqueued"  // a delivery task now exists (Check: would be enqueued)
	ResultDuplicate Result = "duplicate" // the ledger or an existing task already has it
	ResultSkipped   Result = "skipped"   // a forward rule says no; Outcome.Reason says which
)

// Reasons for ResultSkipped.
const (
	SkipUnmanaged       = "unmanaged"        // deskrelay does not manage the ticket
	SkipOwnComment      = "own_comment"      // deskrelay wrote the comment itself (no echo)
	SkipEndUser         = "end_user"         // an end user's (requester's) comment
	SkipPrivate         = "private"          // a private note, and ForwardPrivate is off
	SkipStatusStale     = "stale_status"     // older than the newest status change seen for the ticket
	SkipStatusUnchanged = "unchanged_status" // the same status as the last one forwarded
	SkipStatusInitial   = "initial_status"   // "new": a ticket's creation, not a change
)

// Outcome is the result of publishing (or checking) one event.
type Outcome struct {
	Result Result
	Reason string // for ResultSkipped (Skip…) and ResultDuplicate ("ledger", "task")
	// Event is the event as published, with ConversationID filled in.
	Event Event
}

func (o Outcome) String() string {
	if o.Reason == "" {
		return string(o.Result)
	}
	return string(o.Result) + ": " + o.Reason
}

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
	tickets *relay.Tickets
	client  *asynq.Client
	insp    *asynq.Inspector
	ledger  *Ledger
	cfg     PublisherConfig
}

// NewPublisher returns a Publisher on rdb (which it shares with asynq and
// does not close).
func NewPublisher(rdb redis.UniversalClient, tickets *relay.Tickets, cfg PublisherConfig) *Publisher {
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

// Tickets returns the ticket record the rules read.
func (p *Publisher) Tickets() *relay.Tickets { return p.tickets }

// ForwardPrivate reports whether private notes are forwarded.
func (p *Publisher) ForwardPrivate() bool { return p.cfg.ForwardPrivate }

// Check applies the rules and the ledger to ev and says what Publish would
// do, writing nothing (--dry-run).
func (p *Publisher) Check(ctx context.Context, ev Event) (Outcome, error) {
	return p.decide(ctx, ev)
}

// Publish applies the rules and the ledger to ev and, when it is new and
// forwardable, makes it a durable delivery task. The order of writes is
// crash-safe: the task is created first (its id, DeliverTaskID, is the
// atomic claim), and only then is the event marked in the ledger, put in its
// conversation's delivery order and recorded as the ticket's last status.
// An error means nothing may have been written: publishing again is safe.
func (p *Publisher) Publish(ctx context.Context, ev Event) (Outcome, error) {
	out, err := p.decide(ctx, ev)
	if err != nil {
		return out, err
	}
	ev = out.Event
	if out.Result != ResultEnqueued {
		return out, nil
	}
	if err := p.enqueue(ctx, ev); err != nil {
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			out = Outcome{Result: ResultDuplicate, Reason: "task", Event: ev}
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
func (p *Publisher) Redeliver(ctx context.Context, ev Event) (bool, error) {
	if err := p.insp.DeleteTask(relay.QueueInbound, DeliverTaskID(ev.ID)); err != nil &&
		!errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		// an active or pending task cannot be deleted: it is on its way
		if info, ierr := p.insp.GetTaskInfo(relay.QueueInbound, DeliverTaskID(ev.ID)); ierr == nil && info.State != asynq.TaskStateArchived {
			return false, nil
		}
		return false, fmt.Errorf("replay %s: remove archived task: %w", ev.ID, err)
	}
	if err := p.enqueue(ctx, ev); err != nil {
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			return false, nil
		}
		return false, err
	}
	if err := p.rdb.ZAdd(ctx, keys.InboundOrder(ev.ConversationID), redis.Z{Score: OrderScore(ev), Member: ev.ID}).Err(); err != nil {
		return true, fmt.Errorf("replay %s: order: %w", ev.ID, err)
	}
	return true, nil
}

// OrderScore is an event's place in its conversation's delivery order
// (occurred_at, unix ms).
func OrderScore(ev Event) float64 { return float64(ev.OccurredAt.UnixMilli()) }

func (p *Publisher) enqueue(ctx context.Context, ev Event) error {
	b, err := json.Marshal(DeliverPayload{Event: ev, PublishedAt: p.cfg.Now().UTC()})
	if err != nil {
		return fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	_, err = p.client.EnqueueContext(ctx, asynq.NewTask(TaskDeliver, b),
		asynq.Queue(relay.QueueInbound),
		asynq.TaskID(DeliverTaskID(ev.ID)),
		asynq.MaxRetry(relay.MaxRetry),
		asynq.Timeout(p.cfg.TaskTimeout),
	)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue event %s: %w", ev.ID, err)
	}
	return err
}

func (p *Publisher) afterEnqueue(ctx context.Context, ev Event) error {
	_, err := p.rdb.TxPipelined(ctx, func(pl redis.Pipeliner) error {
		pl.Set(ctx, keys.EventLedger(ev.ID), p.cfg.Now().Unix(), p.ledger.retention)
		pl.ZAddNX(ctx, keys.InboundOrder(ev.ConversationID), redis.Z{Score: OrderScore(ev), Member: ev.ID})
		return nil
	})
	return err
}

// lastStatus reads the last status delivered for a ticket and the newest
// instant seen for it (at = -1 when none).
func (p *Publisher) lastStatus(ctx context.Context, ticketID int64) (status string, at int64, err error) {
	last, err := p.rdb.HMGet(ctx, keys.TicketLastStatus(ticketID), "status", "at").Result()
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
func (p *Publisher) StatusGate(ctx context.Context, ev Event) (skip string, err error) {
	if ev.Type != TypeStatusChanged {
		return "", nil
	}
	status, at, err := p.lastStatus(ctx, ev.TicketID)
	if err != nil {
		return "", err
	}
	t := ev.OccurredAt.Unix()
	switch {
	case at >= 0 && t < at:
		return SkipStatusStale, nil
	case ev.Status == status:
		if t > at {
			return SkipStatusUnchanged, p.setStatus(ctx, ev, true)
		}
		return SkipStatusUnchanged, nil
	}
	return "", nil
}

// StatusDelivered records ev as the last status delivered for its ticket
// (unless a newer one is recorded). Comment events are ignored.
func (p *Publisher) StatusDelivered(ctx context.Context, ev Event) error {
	if ev.Type != TypeStatusChanged {
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

func (p *Publisher) setStatus(ctx context.Context, ev Event, onlyInstant bool) error {
	flag := "0"
	if onlyInstant {
		flag = "1"
	}
	err := statusGate.Run(ctx, p.rdb, []string{keys.TicketLastStatus(ev.TicketID)},
		ev.Status, ev.OccurredAt.Unix(), int64(p.ledger.retention/time.Second), flag).Err()
	if err != nil {
		return fmt.Errorf("record status of ticket %d: %w", ev.TicketID, err)
	}
	return nil
}

// decide holds the forward rules that apply when an event is found; the
// status rule that needs delivery order is StatusGate.
func (p *Publisher) decide(ctx context.Context, ev Event) (Outcome, error) {
	out := Outcome{Event: ev}
	if err := ev.Validate(); err != nil {
		return out, fmt.Errorf("event %q: %w", ev.ID, err)
	}
	conv, ok, err := p.tickets.ConversationOf(ctx, ev.TicketID)
	if err != nil {
		return out, err
	}
	if !ok {
		out.Result, out.Reason = ResultSkipped, SkipUnmanaged
		return out, nil
	}
	out.Event.ConversationID = conv
	skip := func(reason string) (Outcome, error) {
		out.Result, out.Reason = ResultSkipped, reason
		return out, nil
	}
	switch ev.Type {
	case TypeCommentAdded:
		own, err := p.tickets.IsOwnComment(ctx, ev.Comment.ID)
		if err != nil {
			return out, err
		}
		switch {
		case own:
			return skip(SkipOwnComment)
		case ev.Comment.Author.Role != RoleAgent:
			return skip(SkipEndUser)
		case !ev.Comment.Public && !p.cfg.ForwardPrivate:
			return skip(SkipPrivate)
		}
	case TypeStatusChanged:
		if ev.Status == "new" {
			return skip(SkipStatusInitial)
		}
		// only what is certain now: older than a status already delivered.
		// "Unchanged" needs delivery order (StatusGate): an event still on
		// its way may change the status in between.
		_, at, err := p.lastStatus(ctx, ev.TicketID)
		if err != nil {
			return out, err
		}
		if at >= 0 && ev.OccurredAt.Unix() < at {
			return skip(SkipStatusStale)
		}
	}
	seen, err := p.ledger.Seen(ctx, ev.ID)
	if err != nil {
		return out, err
	}
	if seen {
		out.Result, out.Reason = ResultDuplicate, "ledger"
		return out, nil
	}
	out.Result = ResultEnqueued
	return out, nil
}
