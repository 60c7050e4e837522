package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/zendesk"
)

// ResolveComment turns the comment a trigger body names (pl.Comment) into
// an event, for the webhook worker and for payloads the reconciler recovers
// from invocations. It reads Zendesk only after the rules that need no API
// call: a managed ticket, not deskrelay's own comment, not a private note
// (unless ForwardPrivate), not in the ledger, and — when the body names the
// author — written by an agent. It returns the event, or nil and the reason
// (a Skip… constant or ResolvedDuplicate). The event is the Publisher's
// account's (Event.Account, its event id). It still goes through
// Publish, which applies the same rules again.
func (p *Publisher) ResolveComment(ctx context.Context, pl *events.Payload, zd events.CommentReader, src events.Source, fallback time.Time) (*events.Event, string, error) {
	ref := pl.Comment
	if ref == nil {
		return nil, "", fmt.Errorf("ticket %d: the body names no comment", pl.TicketID)
	}
	_, managed, err := p.tickets.ConversationOf(ctx, pl.TicketID)
	if err != nil || !managed {
		return nil, events.SkipUnmanaged, err
	}
	own, err := p.tickets.IsOwnComment(ctx, ref.ID)
	if err != nil || own {
		return nil, events.SkipOwnComment, err
	}
	if ref.Public != nil && !*ref.Public && !p.cfg.ForwardPrivate {
		return nil, events.SkipPrivate, nil
	}
	seen, err := p.ledger.Seen(ctx, p.EventID(events.CommentEventID(ref.ID)))
	if err != nil || seen {
		return nil, events.ResolvedDuplicate, err
	}
	if ref.AuthorID != 0 {
		// the requester's replies need no comment listing
		a, err := zd.Author(ctx, ref.AuthorID)
		if err != nil {
			return nil, "", fmt.Errorf("read author %d: %w", ref.AuthorID, err)
		}
		if a.Role != events.RoleAgent {
			return nil, events.SkipEndUser, nil
		}
	}
	comments, err := zd.Comments(ctx, pl.TicketID)
	if zendesk.KindOf(err) == zendesk.KindNotFound {
		return nil, events.SkipGone, nil // ticket deleted meanwhile
	}
	if err != nil {
		return nil, "", fmt.Errorf("read comments of ticket %d: %w", pl.TicketID, err)
	}
	var c *zendesk.Comment
	for i := range comments {
		if comments[i].ID == ref.ID {
			c = &comments[i]
			break
		}
	}
	if c == nil {
		return nil, events.SkipGone, nil
	}
	author := events.Author{ID: c.AuthorID, Role: events.RoleEndUser}
	if c.AuthorID != 0 {
		a, err := zd.Author(ctx, c.AuthorID)
		if err != nil {
			return nil, "", fmt.Errorf("read author %d: %w", c.AuthorID, err)
		}
		author.Name, author.Role = a.Name, a.Role
	}
	created := c.CreatedAt
	if created.IsZero() {
		created = pl.UpdatedAt
	}
	if created.IsZero() {
		created = fallback
	}
	ev := events.NewCommentEvent(pl.TicketID, pl.Status, events.Comment{
		ID:        c.ID,
		Body:      c.Body,
		HTMLBody:  c.HTMLBody,
		Public:    c.Public,
		Author:    author,
		CreatedAt: created,
	}, src)
	ev, err = p.own(ev)
	return &ev, "", err
}
