package sink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/validate"
)

// Message outcome events: what became of a message the platform posted,
// told on the sink so that the platform need not poll
// GET /v1/messages/{id}.
const (
	TypeMessageFailed    events.Type = "message.failed"
	TypeMessageDelivered events.Type = "message.delivered"
)

// Which outcomes go to the sink (OutcomesConfig.Send,
// DESKRELAY_SINK_OUTCOMES).
const (
	SendFailed    = "failed"    // message.failed only (the default)
	SendDelivered = "delivered" // message.failed and message.delivered
	SendNone      = "none"      // no outcome events
)

// Outcome is a message outcome event; its JSON is the sink delivery body.
// A failed message carries Reason and LastError, a delivered one TicketID
// and CommentID.
type Outcome struct {
	Type           events.Type `json:"type"`
	ID             string      `json:"id"` // stable; equals webhook-id
	MessageID      string      `json:"message_id"`
	ConversationID string      `json:"conversation_id"`
	Account        string      `json:"account"`
	Reason         string      `json:"reason,omitempty"`
	LastError      string      `json:"last_error,omitempty"`
	TicketID       int64       `json:"ticket_id,omitempty"`
	CommentID      int64       `json:"comment_id,omitempty"`
	OccurredAt     time.Time   `json:"occurred_at"`
}

// MessageFailedID is the id of message messageID's failure in replay
// generation gen (0, then +1 per replay): "msg:<id>:failed:<gen>", so that
// a failure after a replay is a new event.
func MessageFailedID(messageID string, gen int64) string {
	return "msg:" + messageID + ":failed:" + strconv.FormatInt(gen, 10)
}

// MessageDeliveredID is the id of message messageID's delivery:
// "msg:<id>:delivered" (a message is delivered once).
func MessageDeliveredID(messageID string) string { return "msg:" + messageID + ":delivered" }

// MessageFailed is the message.failed event of a message failed in replay
// generation gen with reason (unauthorized, invalid) at the instant at.
func MessageFailed(messageID, conversationID string, gen int64, reason, lastError string, at time.Time) Outcome {
	return Outcome{Type: TypeMessageFailed, ID: MessageFailedID(messageID, gen), MessageID: messageID,
		ConversationID: conversationID, Reason: reason, LastError: lastError, OccurredAt: outcomeInstant(at)}
}

// MessageDelivered is the message.delivered event of a message that became
// comment commentID of ticket ticketID at the instant at.
func MessageDelivered(messageID, conversationID string, ticketID, commentID int64, at time.Time) Outcome {
	return Outcome{Type: TypeMessageDelivered, ID: MessageDeliveredID(messageID), MessageID: messageID,
		ConversationID: conversationID, TicketID: ticketID, CommentID: commentID, OccurredAt: outcomeInstant(at)}
}

// outcomeInstant is at as the message record keeps it (UTC, milliseconds),
// so that an outcome told again from the record has the same body.
func outcomeInstant(at time.Time) time.Time { return at.UTC().Truncate(time.Millisecond) }

// OutcomesConfig configures Outcomes.
type OutcomesConfig struct {
	// Send says which outcomes go to the sink (DESKRELAY_SINK_OUTCOMES):
	// SendFailed (the default, also for ""), SendDelivered (failed and
	// delivered) or SendNone.
	Send string
	// Space is the account whose messages these are: the events carry its
	// name and, for every account but the default, ids of their own
	// (OutcomeID); the account's keys hold their ledger and archive.
	// Default keys.Default.
	Space keys.Space
	// Asynq, when set, is shared with other components and not closed;
	// nil: Outcomes makes its own client on the Redis client.
	Asynq *asynq.Client
	// LedgerRetention is how long event ids are remembered for dedupe.
	// Default DefaultLedgerRetention (14 days).
	LedgerRetention time.Duration
	// TaskTimeout bounds one delivery attempt. Default 1 minute.
	TaskTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c OutcomesConfig) withDefaults() OutcomesConfig {
	if c.Send == "" {
		c.Send = SendFailed
	}
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

// Validate checks c, reporting a bad field as a *validate.FieldError.
func (c OutcomesConfig) Validate() error {
	switch c.withDefaults().Send {
	case SendFailed, SendDelivered, SendNone:
		return nil
	}
	return validate.Errorf("sink", "Send", "must be failed, delivered or none, got %q", c.Send)
}

// Outcomes publishes message outcome events to the sink: a durable
// TaskDeliver task each (Deliverer.ProcessTask signs, posts and retries
// them like ticket events, and archives them for Replay when the sink
// refuses them for good).
//
// Exactly once: the caller records the outcome first and publishes after;
// a crash in between makes it publish again (the relay's task runs again
// and finds the outcome recorded), and the event id — the delivery task's
// id while it lives, then the ledger (keys.EventLedger) — drops the
// second copy. The sink itself receives an event at least once (a lost
// answer is retried), always with the same webhook-id.
//
// Outcome events take no place in a conversation's delivery order
// (keys.InboundOrder): they neither wait for the conversation's ticket
// events nor hold them up, so no outcome can block behind an event that
// waits for it. Each carries occurred_at: for one message, the event with
// the latest occurred_at is its state. Safe for concurrent use.
type Outcomes struct {
	cfg    OutcomesConfig
	client *asynq.Client
	ledger *Ledger
}

// NewOutcomes returns the outcome publisher on rdb (shared with asynq, not
// closed by it).
func NewOutcomes(rdb redis.UniversalClient, cfg OutcomesConfig) (*Outcomes, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	client := cfg.Asynq
	if client == nil {
		client = asynq.NewClientFromRedisClient(rdb)
	}
	return &Outcomes{cfg: cfg, client: client, ledger: NewLedgerIn(rdb, cfg.Space, cfg.LedgerRetention)}, nil
}

// OutcomeID is the id outcome event id (MessageFailedID,
// MessageDeliveredID) has in account: the default account's ids stay as
// they are ("msg:42:delivered"), every other account's carry its name in
// braces ("msg:{acme}:42:delivered"; message ids never hold braces, but may
// hold colons), so that two accounts' outcomes never share an id, nor a
// delivery task.
func OutcomeID(account, id string) string {
	account = events.AccountOf(account)
	rest, ok := strings.CutPrefix(id, "msg:")
	if account == keys.DefaultAccount || !ok || strings.HasPrefix(rest, "{") {
		return id
	}
	return "msg:{" + account + "}:" + rest
}

// Wants reports whether outcomes of type t go to the sink.
func (o *Outcomes) Wants(t events.Type) bool {
	switch t {
	case TypeMessageFailed:
		return o.cfg.Send == SendFailed || o.cfg.Send == SendDelivered
	case TypeMessageDelivered:
		return o.cfg.Send == SendDelivered
	}
	return false
}

// PublishOutcome makes ev a durable sink delivery, unless its type is not
// wanted or its id was published before (then it does nothing). Call it
// after the outcome is recorded, and again whenever it is not certain that
// an earlier call returned nil. An error means nothing may have been
// written: publishing again is safe.
func (o *Outcomes) PublishOutcome(ctx context.Context, ev Outcome) error {
	if !o.Wants(ev.Type) {
		return nil
	}
	if ev.ID == "" || ev.MessageID == "" || ev.ConversationID == "" {
		return fmt.Errorf("outcome %q of message %q: id, message_id and conversation_id are required", ev.ID, ev.MessageID)
	}
	ev.Account = o.cfg.Space.Account()
	ev.ID = OutcomeID(ev.Account, ev.ID)
	seen, err := o.ledger.Seen(ctx, ev.ID)
	if err != nil || seen {
		return err
	}
	err = enqueueDelivery(ctx, o.client, o.cfg.Space, ev.ID, DeliverPayload{Outcome: &ev, PublishedAt: o.cfg.Now().UTC()}, o.cfg.TaskTimeout)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return err
	}
	// the task (new, or the earlier call's) is the claim; the ledger keeps
	// the id once the task is gone
	return o.ledger.Mark(ctx, ev.ID)
}
