package events

import (
	"context"

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
