package tickets

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
)

// DefaultRetention is how long deskrelay remembers a conversation's ticket,
// a managed ticket and its own comments after their last activity, when the
// configuration says nothing (DESKRELAY_RETENTION).
const DefaultRetention = 30 * 24 * time.Hour

// Tickets is deskrelay's record of which Zendesk tickets it manages and
// which comments it wrote itself. relay writes it; inbound and reconcile read
// it to decide what to forward to the platform. Every record expires after
// the retention; a conversation whose record expired finds its ticket again
// by external_id (the relay does that).
type Tickets struct {
	rdb       redis.UniversalClient
	retention time.Duration
	space     keys.Space
}

// New returns the ticket record of the account "default" on rdb, with
// DefaultRetention.
func New(rdb redis.UniversalClient) *Tickets {
	return &Tickets{rdb: rdb, retention: DefaultRetention, space: keys.Default}
}

// WithSpace returns the record of another account (its key space).
func (t *Tickets) WithSpace(s keys.Space) *Tickets {
	c := *t
	c.space = s
	return &c
}

// Space is the key space of the account the record belongs to.
func (t *Tickets) Space() keys.Space { return t.space }

// WithRetention returns the record with another retention (d > 0).
func (t *Tickets) WithRetention(d time.Duration) *Tickets {
	c := *t
	if d > 0 {
		c.retention = d
	}
	return &c
}

// Retention is how long the records are kept after their last activity.
func (t *Tickets) Retention() time.Duration { return t.retention }

// ConversationOf returns the conversation a managed ticket belongs to;
// ok is false when deskrelay does not manage the ticket. Asking is activity
// on the ticket (an agent wrote in it): its record lives for the retention
// from now.
func (t *Tickets) ConversationOf(ctx context.Context, ticketID int64) (conversationID string, ok bool, err error) {
	v, err := t.rdb.GetEx(ctx, t.space.TicketConversation(ticketID), t.retention).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("look up ticket %d: %w", ticketID, err)
	}
	return v, true, nil
}

// TicketOf returns the current ticket of a conversation; ok is false when the
// conversation has none yet.
func (t *Tickets) TicketOf(ctx context.Context, conversationID string) (ticketID int64, ok bool, err error) {
	v, err := t.rdb.Get(ctx, t.space.ConversationTicket(conversationID)).Result()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("look up conversation %s: %w", conversationID, err)
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("conversation %s: corrupt ticket id %q", conversationID, v)
	}
	return id, true, nil
}

// Link records that conversationID now lives in ticketID (a new ticket, a
// follow-up or a replacement). Earlier tickets of the conversation stay
// managed, so late agent replies on them still reach the platform.
func (t *Tickets) Link(ctx context.Context, conversationID string, ticketID int64) error {
	_, err := t.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, t.space.ConversationTicket(conversationID), ticketID, t.retention)
		p.Set(ctx, t.space.TicketConversation(ticketID), conversationID, t.retention)
		return nil
	})
	if err != nil {
		return fmt.Errorf("link conversation %s to ticket %d: %w", conversationID, ticketID, err)
	}
	return nil
}

// RememberOwnComment records a comment deskrelay wrote itself.
func (t *Tickets) RememberOwnComment(ctx context.Context, commentID int64) error {
	if commentID == 0 {
		return nil
	}
	if err := t.rdb.Set(ctx, t.space.OwnComment(commentID), 1, t.retention).Err(); err != nil {
		return fmt.Errorf("remember own comment %d: %w", commentID, err)
	}
	return nil
}

// IsOwnComment reports whether deskrelay wrote the comment itself.
func (t *Tickets) IsOwnComment(ctx context.Context, commentID int64) (bool, error) {
	n, err := t.rdb.Exists(ctx, t.space.OwnComment(commentID)).Result()
	if err != nil {
		return false, fmt.Errorf("look up comment %d: %w", commentID, err)
	}
	return n == 1, nil
}
