package zendesk

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// errNotImplemented marks methods whose bodies are being written.
var errNotImplemented = errors.New("not implemented")

// Config configures a Client. Exactly one way of authenticating is set:
// Email+APIToken, OAuthToken, or TokenSource.
type Config struct {
	// BaseURL is the account's base URL, e.g. https://acme.zendesk.com
	// (no /api/v2). When empty it is built from Subdomain.
	BaseURL string
	// Subdomain is "acme" for acme.zendesk.com.
	Subdomain string
	// Email and APIToken authenticate as "{email}/token:{token}".
	Email    string
	APIToken string
	// OAuthToken is a fixed OAuth access token sent as a bearer token.
	OAuthToken string
	// TokenSource, when set, supplies OAuth access tokens (issue 7); a 401
	// makes the client ask Refresh (if the source implements it) once and
	// retry.
	TokenSource TokenSource
	// Timeout bounds one HTTP request. Default 15s.
	Timeout time.Duration
	// UserAgent is sent on every request. Default "deskrelay".
	UserAgent string
	// HTTPClient replaces the transport (tests). Optional.
	HTTPClient *http.Client
	// OnResponse, when set, is called after every HTTP exchange, e.g. to
	// feed the shared rate limiter with X-Rate-Limit-Remaining.
	OnResponse func(Response)
}

// TokenSource supplies OAuth access tokens.
type TokenSource interface {
	// Token returns the current access token.
	Token(ctx context.Context) (string, error)
	// Refresh forces a new access token after stale was rejected with 401.
	Refresh(ctx context.Context, stale string) (string, error)
}

// Client talks to one Zendesk account. Safe for concurrent use.
type Client struct {
	cfg Config
}

// New returns a Client, or an error naming the missing or conflicting setting.
func New(cfg Config) (*Client, error) {
	return &Client{cfg: cfg}, errNotImplemented
}

// BaseURL returns the account's base URL (no credentials in it).
func (c *Client) BaseURL() string { return c.cfg.BaseURL }

// CreateTicket creates a ticket. idempotencyKey is sent as Idempotency-Key.
// https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#create-ticket
func (c *Client) CreateTicket(ctx context.Context, t NewTicket, idempotencyKey string) (*TicketWrite, error) {
	return nil, errNotImplemented
}

// UpdateTicket updates a ticket, e.g. to add a comment with custom metadata.
// https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-ticket
func (c *Client) UpdateTicket(ctx context.Context, id int64, u TicketUpdate) (*TicketWrite, error) {
	return nil, errNotImplemented
}

// AddComment adds a comment to a ticket with the given custom metadata.
func (c *Client) AddComment(ctx context.Context, id int64, comment CommentInput, metadata map[string]any) (*TicketWrite, error) {
	return c.UpdateTicket(ctx, id, TicketUpdate{Comment: &comment, Metadata: metadata})
}

// GetTicket shows one ticket.
// https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#show-ticket
func (c *Client) GetTicket(ctx context.Context, id int64) (*Ticket, error) {
	return nil, errNotImplemented
}

// TicketsByExternalID lists the tickets with the given external_id.
// https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#list-tickets
func (c *Client) TicketsByExternalID(ctx context.Context, externalID string) ([]Ticket, error) {
	return nil, errNotImplemented
}

// ListComments lists all comments of a ticket, oldest first, following pages.
// https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/#list-comments
func (c *Client) ListComments(ctx context.Context, ticketID int64) ([]Comment, error) {
	return nil, errNotImplemented
}

// ListAudits lists all audits of a ticket, following pages.
// https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_audits/#list-audits-for-a-ticket
func (c *Client) ListAudits(ctx context.Context, ticketID int64) ([]Audit, error) {
	return nil, errNotImplemented
}

// TicketEvents reads one page of the incremental ticket events export with
// include=comment_events, starting at start (Zendesk wants it at least a
// minute in the past).
// https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/#incremental-ticket-event-export
func (c *Client) TicketEvents(ctx context.Context, start time.Time) (*TicketEventsPage, error) {
	return nil, errNotImplemented
}

// IncrementalTickets reads one page of the cursor-based ticket export: from
// start when cursor is empty, else from cursor.
// https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/#incremental-ticket-export-cursor-based
func (c *Client) IncrementalTickets(ctx context.Context, start time.Time, cursor string) (*TicketExportPage, error) {
	return nil, errNotImplemented
}

// GetWebhook shows a webhook.
// https://developer.zendesk.com/api-reference/webhooks/webhooks-api/webhooks/#show-webhook
func (c *Client) GetWebhook(ctx context.Context, id string) (*Webhook, error) {
	return nil, errNotImplemented
}

// ActivateWebhook sets a webhook's status to active.
// https://developer.zendesk.com/api-reference/webhooks/webhooks-api/webhooks/#patch-webhook
func (c *Client) ActivateWebhook(ctx context.Context, id string) error {
	return errNotImplemented
}

// WebhookSigningSecret reads a webhook's signing secret.
// https://developer.zendesk.com/api-reference/webhooks/webhooks-api/webhooks/#show-webhook-signing-secret
func (c *Client) WebhookSigningSecret(ctx context.Context, id string) (string, error) {
	return "", errNotImplemented
}

// ListInvocations lists one page of a webhook's invocations.
// https://developer.zendesk.com/api-reference/webhooks/webhooks-api/webhooks/#list-webhook-invocations
func (c *Client) ListInvocations(ctx context.Context, webhookID string, f InvocationFilter) (*InvocationsPage, error) {
	return nil, errNotImplemented
}

// InvocationAttempts lists the attempts of one invocation, with their payloads.
// https://developer.zendesk.com/api-reference/webhooks/webhooks-api/webhooks/#list-webhook-invocation-attempts
func (c *Client) InvocationAttempts(ctx context.Context, webhookID, invocationID string) ([]Attempt, error) {
	return nil, errNotImplemented
}

// GetTarget shows a legacy target.
// https://developer.zendesk.com/api-reference/ticketing/targets/targets/#show-target
func (c *Client) GetTarget(ctx context.Context, id int64) (*Target, error) {
	return nil, errNotImplemented
}

// ActivateTarget sets a legacy target active.
// https://developer.zendesk.com/api-reference/ticketing/targets/targets/#update-target
func (c *Client) ActivateTarget(ctx context.Context, id int64) error {
	return errNotImplemented
}

// TargetFailures lists recent target failures.
// https://developer.zendesk.com/api-reference/ticketing/targets/target_failures/
func (c *Client) TargetFailures(ctx context.Context) ([]TargetFailure, error) {
	return nil, errNotImplemented
}

// Me returns the authenticated user; the credential probe.
// https://developer.zendesk.com/api-reference/ticketing/users/users/#show-the-currently-authenticated-user
func (c *Client) Me(ctx context.Context) (*User, error) {
	return nil, errNotImplemented
}

// CreateOrUpdateUser finds or creates an end user by email or external id.
// https://developer.zendesk.com/api-reference/ticketing/users/users/#create-or-update-user
func (c *Client) CreateOrUpdateUser(ctx context.Context, u UserInput) (*User, error) {
	return nil, errNotImplemented
}

// GetUser shows one user (e.g. to tell an agent's comment from an end user's).
// https://developer.zendesk.com/api-reference/ticketing/users/users/#show-user
func (c *Client) GetUser(ctx context.Context, id int64) (*User, error) {
	return nil, errNotImplemented
}
