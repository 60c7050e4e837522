package events

import (
	"context"
	"fmt"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
)

// Reasons ResolveComment gives besides the Skip… reasons of Publish.
const (
	ResolvedDuplicate = "duplicate" // the comment's event is in the ledger already
	SkipGone          = "gone"      // the ticket or the comment no longer exists
)

// CommentReader is what resolving a trigger body's comment needs from
// Zendesk. Implementations add their own rate limiting and caching.
type CommentReader interface {
	// Comments lists a ticket's comments (zendesk.Client.ListComments).
	Comments(ctx context.Context, ticketID int64) ([]zendesk.Comment, error)
	// Author returns a user's id, name and role: RoleAgent for agents and
	// admins, RoleEndUser otherwise (also for a deleted user).
	Author(ctx context.Context, userID int64) (Author, error)
}

// AuthorOf maps a Zendesk user to a comment author (agents and admins are
// staff: RoleAgent).
func AuthorOf(u *zendesk.User) Author {
	a := Author{Name: u.Name, Role: RoleEndUser}
	if u.ID != nil {
		a.ID = *u.ID
	}
	if u.Role == "agent" || u.Role == "admin" {
		a.Role = RoleAgent
	}
	return a
}

// ResolveComment turns the comment a trigger body names (pl.Comment) into
// an event, for the webhook worker and for payloads the reconciler recovers
// from invocations. It reads Zendesk only after the rules that need no API
// call: a managed ticket, not deskrelay's own comment, not a private note
// (unless ForwardPrivate), not in the ledger, and — when the body names the
// author — written by an agent. It returns the event, or nil and the reason
// (a Skip… constant or ResolvedDuplicate). The event still goes through
// Publish, which applies the same rules again.
func (p *Publisher) ResolveComment(ctx context.Context, pl *Payload, zd CommentReader, src Source, fallback time.Time) (*Event, string, error) {
	ref := pl.Comment
	if ref == nil {
		return nil, "", fmt.Errorf("ticket %d: the body names no comment", pl.TicketID)
	}
	_, managed, err := p.tickets.ConversationOf(ctx, pl.TicketID)
	if err != nil || !managed {
		return nil, SkipUnmanaged, err
	}
	own, err := p.tickets.IsOwnComment(ctx, ref.ID)
	if err != nil || own {
		return nil, SkipOwnComment, err
	}
	if ref.Public != nil && !*ref.Public && !p.cfg.ForwardPrivate {
		return nil, SkipPrivate, nil
	}
	seen, err := p.ledger.Seen(ctx, CommentEventID(ref.ID))
	if err != nil || seen {
		return nil, ResolvedDuplicate, err
	}
	if ref.AuthorID != 0 {
		// the requester's replies need no comment listing
		a, err := zd.Author(ctx, ref.AuthorID)
		if err != nil {
			return nil, "", fmt.Errorf("read author %d: %w", ref.AuthorID, err)
		}
		if a.Role != RoleAgent {
			return nil, SkipEndUser, nil
		}
	}
	comments, err := zd.Comments(ctx, pl.TicketID)
	if zendesk.KindOf(err) == zendesk.KindNotFound {
		return nil, SkipGone, nil // ticket deleted meanwhile
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
		return nil, SkipGone, nil
	}
	author := Author{ID: c.AuthorID, Role: RoleEndUser}
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
	ev := NewCommentEvent(pl.TicketID, pl.Status, Comment{
		ID:        c.ID,
		Body:      c.Body,
		HTMLBody:  c.HTMLBody,
		Public:    c.Public,
		Author:    author,
		CreatedAt: created,
	}, src)
	return &ev, "", nil
}
