package zendesk

import (
	"encoding/json"
	"time"
)

// Ticket is a Zendesk ticket as returned by the Tickets API.
// https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/
type Ticket struct {
	ID           int64         `json:"id"`
	ExternalID   string        `json:"external_id,omitempty"`
	Status       string        `json:"status"`
	RequesterID  int64         `json:"requester_id,omitempty"`
	Subject      string        `json:"subject,omitempty"`
	Description  string        `json:"description,omitempty"`
	Tags         []string      `json:"tags,omitempty"`
	Via          *Via          `json:"via,omitempty"`
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
	CustomFields []CustomField `json:"custom_fields,omitempty"`
}

// Via says through which channel something was created.
type Via struct {
	Channel string          `json:"channel"`
	Source  json.RawMessage `json:"source,omitempty"`
}

// CustomField is one ticket custom field value.
type CustomField struct {
	ID    int64 `json:"id"`
	Value any   `json:"value"`
}

// Requester names the end user a new ticket is requested by; Zendesk finds or
// creates the user by email.
type Requester struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// CommentInput is the comment part of a ticket create or update request.
type CommentInput struct {
	Body     string `json:"body"`
	Public   bool   `json:"public"` // always sent: Zendesk otherwise carries over the ticket's first value
	AuthorID int64  `json:"author_id,omitempty"`
}

// NewTicket is the request to create a ticket.
type NewTicket struct {
	Subject             string         `json:"subject,omitempty"`
	Comment             CommentInput   `json:"comment"`
	Requester           *Requester     `json:"requester,omitempty"`
	RequesterID         int64          `json:"requester_id,omitempty"`
	ExternalID          string         `json:"external_id,omitempty"`
	Tags                []string       `json:"tags,omitempty"`
	CustomFields        []CustomField  `json:"custom_fields,omitempty"`
	ViaFollowupSourceID int64          `json:"via_followup_source_id,omitempty"`
	Metadata            map[string]any `json:"metadata,omitempty"`
}

// TicketUpdate is the request to update a ticket, typically to add a comment.
// Never carries tags: on an update they would replace the whole list.
type TicketUpdate struct {
	Comment      *CommentInput  `json:"comment,omitempty"`
	Status       string         `json:"status,omitempty"`
	Metadata     map[string]any `json:"metadata,omitempty"`
	SafeUpdate   bool           `json:"safe_update,omitempty"`
	UpdatedStamp *time.Time     `json:"updated_stamp,omitempty"`
}

// TicketWrite is what Zendesk answers to a ticket create or update.
type TicketWrite struct {
	Ticket Ticket `json:"ticket"`
	Audit  Audit  `json:"audit"`
	// IdempotencyHit is true when Zendesk answered a create from its
	// idempotency cache (x-idempotency-lookup: hit).
	IdempotencyHit bool `json:"-"`
}

// CommentID returns the id of the comment the write added, from the audit's
// Comment event, or 0 when there is none.
func (w *TicketWrite) CommentID() int64 {
	for _, ev := range w.Audit.Events {
		if ev.Type == "Comment" {
			return ev.ID
		}
	}
	return 0
}

// Comment is a ticket comment.
// https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/
type Comment struct {
	ID        int64     `json:"id"`
	Type      string    `json:"type"`
	AuthorID  int64     `json:"author_id"`
	Body      string    `json:"body"`
	HTMLBody  string    `json:"html_body"`
	PlainBody string    `json:"plain_body"`
	Public    bool      `json:"public"`
	AuditID   int64     `json:"audit_id"`
	Via       *Via      `json:"via,omitempty"`
	Metadata  Metadata  `json:"metadata"`
	CreatedAt time.Time `json:"created_at"`
}

// Metadata is the metadata of an audit or comment. Custom holds what the
// request's "metadata" object carried.
type Metadata struct {
	System map[string]any `json:"system,omitempty"`
	Custom map[string]any `json:"custom,omitempty"`
}

// CustomString returns the custom metadata value for key, looking both at
// custom[key] and at custom["custom"][key] (docs/zendesk.md: a request that nests
// "custom" itself may end up doubly nested).
func (m Metadata) CustomString(key string) string {
	if v, ok := m.Custom[key].(string); ok {
		return v
	}
	if inner, ok := m.Custom["custom"].(map[string]any); ok {
		if v, ok := inner[key].(string); ok {
			return v
		}
	}
	return ""
}

// Audit is a ticket audit: one change set with its events.
// https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_audits/
type Audit struct {
	ID        int64        `json:"id"`
	TicketID  int64        `json:"ticket_id"`
	AuthorID  int64        `json:"author_id"`
	CreatedAt time.Time    `json:"created_at"`
	Metadata  Metadata     `json:"metadata"`
	Via       *Via         `json:"via,omitempty"`
	Events    []AuditEvent `json:"events"`
}

// AuditEvent is one event of an audit: a Comment, a Change, a Create, a
// Notification (a trigger e-mailed Recipients) …
type AuditEvent struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	AuthorID  int64  `json:"author_id,omitempty"`
	Body      string `json:"body,omitempty"`
	HTMLBody  string `json:"html_body,omitempty"`
	Public    *bool  `json:"public,omitempty"`
	FieldName string `json:"field_name,omitempty"`
	// Value and PreviousValue come as Zendesk sends them: a string, a
	// number (float64), an id as a numeric string, an array ([]any) or nil.
	Value         any     `json:"value,omitempty"`
	PreviousValue any     `json:"previous_value,omitempty"`
	Subject       string  `json:"subject,omitempty"`    // Notification
	Recipients    []int64 `json:"recipients,omitempty"` // Notification
	Via           *Via    `json:"via,omitempty"`
}

// TicketEvent is one event of the incremental ticket events export.
// https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/#incremental-ticket-event-export
type TicketEvent struct {
	ID          int64        `json:"id"`
	TicketID    int64        `json:"ticket_id"`
	Timestamp   int64        `json:"timestamp"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdaterID   int64        `json:"updater_id"`
	Via         *Via         `json:"via,omitempty"`
	EventType   string       `json:"event_type"`
	ChildEvents []ChildEvent `json:"child_events"`
}

// ChildEvent is a child of a TicketEvent: a Comment, or a Change that names
// the changed field under its own key (e.g. "status": "pending").
type ChildEvent struct {
	ID            int64          `json:"id"`
	EventType     string         `json:"event_type"`
	Body          string         `json:"body,omitempty"`
	HTMLBody      string         `json:"html_body,omitempty"`
	Public        *bool          `json:"public,omitempty"`
	AuthorID      int64          `json:"author_id,omitempty"`
	Via           *Via           `json:"via,omitempty"`
	Status        string         `json:"status,omitempty"`
	PreviousValue any            `json:"previous_value,omitempty"`
	Metadata      *Metadata      `json:"metadata,omitempty"`
	Raw           map[string]any `json:"-"` // every field as sent, for shapes not modelled above
}

// TicketEventsPage is one page of the incremental ticket events export.
type TicketEventsPage struct {
	Events      []TicketEvent `json:"ticket_events"`
	NextPage    string        `json:"next_page"`
	Count       int           `json:"count"`
	EndOfStream bool          `json:"end_of_stream"`
	EndTime     int64         `json:"end_time"`
}

// TicketExportPage is one page of the cursor-based incremental ticket export.
type TicketExportPage struct {
	Tickets      []Ticket `json:"tickets"`
	AfterCursor  string   `json:"after_cursor"`
	AfterURL     string   `json:"after_url"`
	BeforeCursor string   `json:"before_cursor"`
	EndOfStream  bool     `json:"end_of_stream"`
}

// User is a Zendesk user.
type User struct {
	ID         *int64 `json:"id"` // nil for the anonymous user some accounts answer with
	Name       string `json:"name"`
	Email      string `json:"email,omitempty"`
	Role       string `json:"role"`
	ExternalID string `json:"external_id,omitempty"`
}

// UserInput finds or creates an end user by email or external id.
type UserInput struct {
	Name       string `json:"name,omitempty"`
	Email      string `json:"email,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
	Role       string `json:"role,omitempty"`
}

// Webhook is a Zendesk webhook.
// https://developer.zendesk.com/api-reference/webhooks/webhooks-api/webhooks/
type Webhook struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Status        string    `json:"status"` // "active" or "inactive"
	Endpoint      string    `json:"endpoint"`
	HTTPMethod    string    `json:"http_method"`
	RequestFormat string    `json:"request_format"`
	Subscriptions []string  `json:"subscriptions"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Webhook invocation statuses (docs/zendesk.md, "Invocations").
const (
	InvocationSuccess = "success"
	InvocationFailed  = "failed"
	InvocationTimeout = "timeout"
	// InvocationTerminated: Zendesk stopped after the endpoint answered a
	// status it does not retry; StatusCode is that status (e.g. 403).
	InvocationTerminated = "terminated"
	// InvocationThrottled: Zendesk held the call back; never sent, no
	// status code.
	InvocationThrottled = "throttled"
	// InvocationCircuitBroken: dropped while the circuit breaker was open.
	InvocationCircuitBroken = "circuit broken"
)

// Invocation is one recorded call of a webhook.
type Invocation struct {
	ID     string `json:"id"`
	Status string `json:"status"` // one of the Invocation* statuses
	// StatusCode is the endpoint's answer; 0 when none came (status_code
	// null or absent: throttled, circuit broken, timeout).
	StatusCode        int       `json:"status_code"`
	LatestCompletedAt time.Time `json:"latest_completed_at"`
}

// Delivered reports whether the invocation's payload reached the endpoint
// and was accepted; every other status leaves an event to recover.
func (i Invocation) Delivered() bool { return i.Status == InvocationSuccess }

// InvocationsPage is one page of a webhook's invocations.
type InvocationsPage struct {
	Invocations []Invocation `json:"invocations"`
	HasMore     bool         `json:"-"`
	AfterCursor string       `json:"-"`
}

// InvocationFilter narrows a listing of invocations.
type InvocationFilter struct {
	From, To time.Time
	Status   string
	After    string // page[after] cursor
	PageSize int
}

// Attempt is one attempt of an invocation, with the exact request body sent.
type Attempt struct {
	ID           string         `json:"id"`
	InvocationID string         `json:"invocation_id"`
	Status       string         `json:"status"`
	StatusCode   int            `json:"status_code"`
	Request      AttemptRequest `json:"request"`
	CompletedAt  time.Time      `json:"completed_at"`
}

// AttemptRequest is the request an attempt sent.
type AttemptRequest struct {
	Headers []Header `json:"headers"`
	Payload string   `json:"payload"`
}

// Header is one request header of an attempt.
type Header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Target is a legacy target ("Notify external target").
// https://developer.zendesk.com/api-reference/ticketing/targets/targets/
type Target struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	Type      string    `json:"type"` // "http_target", "email_target", … (legacy "url_target_v2")
	Active    bool      `json:"active"`
	TargetURL string    `json:"target_url"`
	Method    string    `json:"method"`
	CreatedAt time.Time `json:"created_at"`
}

// TargetFailure is one recent failure of a target.
type TargetFailure struct {
	ID                      int64     `json:"id"`
	TargetName              string    `json:"target_name"`
	StatusCode              int       `json:"status_code"`
	ConsecutiveFailureCount int       `json:"consecutive_failure_count"`
	CreatedAt               time.Time `json:"created_at"`
}

// RateLimit is what Zendesk's rate-limit headers said about one budget on
// one response (see ParseRateLimits). Zero values mean "not sent".
type RateLimit struct {
	Limit     int
	Remaining int
	Reset     time.Duration
	Known     bool // at least one header was present
}

// Response describes one finished HTTP exchange, for Config.OnResponse.
type Response struct {
	Op         string
	StatusCode int // 0 when no response arrived
	// Family is the rate-limit budget the request belongs to (Classify);
	// SpendsAccount says whether it also spent the account's budget.
	Family        Family
	SpendsAccount bool
	// RateLimit is Family's budget as the response reported it (for
	// FamilyAccount, the account's).
	RateLimit RateLimit
	// Account is the account's budget as the response reported it; not
	// Known when the family does not spend the account (the Webhooks API)
	// or the headers were absent.
	Account RateLimit
	// RetryAfter is the response's Retry-After (429, 503), 0 when absent.
	RetryAfter time.Duration
	RequestID  string
	Duration   time.Duration
}
