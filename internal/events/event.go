package events

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Type is the kind of a sink event.
type Type string

// The sink event types (README.md, "Sink deliveries").
const (
	TypeCommentAdded  Type = "ticket.comment_added"
	TypeStatusChanged Type = "ticket.status_changed"
)

// Source says which path found an event.
type Source string

// Sources of events.
const (
	SourceWebhook    Source = "webhook"    // a live webhook (or legacy target) call
	SourceReconcile  Source = "reconcile"  // the incremental ticket events export
	SourceInvocation Source = "invocation" // a payload recovered from the webhook's invocations
)

// Role values of Author.Role.
const (
	RoleAgent   = "agent"    // staff: agents and admins (is_staff in webhooks)
	RoleEndUser = "end-user" // requesters and other end users
)

// Event is one delivery to the platform's sink; its JSON is the request body.
type Event struct {
	Type           Type      `json:"type"`
	ID             string    `json:"id"` // stable; equals webhook-id
	ConversationID string    `json:"conversation_id"`
	TicketID       int64     `json:"ticket_id"`
	Status         string    `json:"status,omitempty"` // lower case: new open pending hold solved closed deleted
	Comment        *Comment  `json:"comment,omitempty"`
	OccurredAt     time.Time `json:"occurred_at"`
	Source         Source    `json:"source"`
	// Account is the Zendesk account the event belongs to ("default" for
	// a single-account deployment). The account's sink.Publisher sets it
	// (and the account's event id, AccountEventID); "" in an event of the
	// previous release means DefaultAccount.
	Account string `json:"account"`
}

// DefaultAccount is the account of a single-account deployment (the same
// name as keys.DefaultAccount; events is a leaf and imports neither).
const DefaultAccount = "default"

// AccountOf is account, or DefaultAccount when it is empty (a task or
// record of the previous release, which had no accounts).
func AccountOf(account string) string {
	if account == "" {
		return DefaultAccount
	}
	return account
}

// AccountEventID is the id of event id (as CommentEventID and
// StatusEventID build it) in account: the default account's ids stay as
// they are ("zd:comment:42"), every other account's carry its name
// ("zd:acme:comment:42"), so that two accounts' events never share an id.
// An id that does not start with "zd:" is returned as it is.
func AccountEventID(account, id string) string {
	account = AccountOf(account)
	rest, ok := strings.CutPrefix(id, "zd:")
	if account == DefaultAccount || !ok {
		return id
	}
	return "zd:" + account + ":" + rest
}

// Comment is the comment of a ticket.comment_added event.
type Comment struct {
	ID        int64     `json:"id"`
	Body      string    `json:"body"`
	HTMLBody  string    `json:"html_body"`
	Public    bool      `json:"public"`
	Author    Author    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
}

// Author is a comment's author; Role is RoleAgent for staff.
type Author struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// CommentEventID is the id of the event for comment commentID: "zd:comment:<id>".
func CommentEventID(commentID int64) string {
	return "zd:comment:" + strconv.FormatInt(commentID, 10)
}

// StatusEventID is the id of a status change: "zd:status:<ticket>:<status in
// lower case>:<unix seconds of the ticket's updated_at of that change>". The
// webhook (detail.updated_at) and the export (the audit's created_at) give
// the same instant, so both paths build the same id.
func StatusEventID(ticketID int64, status string, at time.Time) string {
	return "zd:status:" + strconv.FormatInt(ticketID, 10) + ":" + NormalizeStatus(status) + ":" + strconv.FormatInt(at.Unix(), 10)
}

// NormalizeStatus lower-cases a Zendesk status ("PENDING", "Pending" → "pending").
func NormalizeStatus(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// NewCommentEvent builds a ticket.comment_added event with its id;
// OccurredAt is the comment's creation time. ConversationID may be left
// empty: the Publisher fills it from the ticket record.
func NewCommentEvent(ticketID int64, status string, c Comment, src Source) Event {
	return Event{
		Type:       TypeCommentAdded,
		ID:         CommentEventID(c.ID),
		TicketID:   ticketID,
		Status:     NormalizeStatus(status),
		Comment:    &c,
		OccurredAt: c.CreatedAt.UTC(),
		Source:     src,
	}
}

// NewStatusEvent builds a ticket.status_changed event with its id; at is
// the ticket's updated_at of the change.
func NewStatusEvent(ticketID int64, status string, at time.Time, src Source) Event {
	return Event{
		Type:       TypeStatusChanged,
		ID:         StatusEventID(ticketID, status, at),
		TicketID:   ticketID,
		Status:     NormalizeStatus(status),
		OccurredAt: at.UTC().Truncate(time.Second),
		Source:     src,
	}
}

// Validate reports what is missing for the event to be published.
func (e Event) Validate() error {
	var errs []error
	if e.TicketID <= 0 {
		errs = append(errs, errors.New("ticket_id missing"))
	}
	switch e.Type {
	case TypeCommentAdded:
		if e.Comment == nil || e.Comment.ID <= 0 {
			errs = append(errs, errors.New("comment.id missing"))
		} else if want := AccountEventID(e.Account, CommentEventID(e.Comment.ID)); e.ID != want {
			errs = append(errs, fmt.Errorf("id %q is not %q", e.ID, want))
		}
	case TypeStatusChanged:
		if e.Status == "" {
			errs = append(errs, errors.New("status missing"))
		}
		if e.OccurredAt.IsZero() {
			errs = append(errs, errors.New("occurred_at missing"))
		}
		if e.ID == "" {
			errs = append(errs, errors.New("id missing"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown type %q", e.Type))
	}
	if e.Source == "" {
		errs = append(errs, errors.New("source missing"))
	}
	return errors.Join(errs...)
}
