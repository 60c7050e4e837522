package zendesk

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/deskrelay/deskrelay/internal/validate"
	"github.com/go-resty/resty/v2"
)

// Defaults for Config.
const (
	DefaultTimeout   = 15 * time.Second
	DefaultUserAgent = "deskrelay"
	// DefaultMaxIdleConnsPerHost is how many idle connections to one
	// Zendesk account a transport made by the client (or by NewTransport
	// with 0) keeps for reuse. Go's own default is 2, so that with more
	// workers than that most calls open a new TLS connection.
	DefaultMaxIdleConnsPerHost = 64
)

// Config configures a Client. Exactly one way of authenticating is set:
// Email+APIToken, OAuthToken, or TokenSource.
type Config struct {
	// BaseURL is the account's base URL, e.g. https://acme.zendesk.com
	// (no /api/v2). When empty it is built from Subdomain. When both are
	// set, BaseURL wins (it overrides the subdomain).
	BaseURL string
	// Subdomain is "acme" for acme.zendesk.com.
	Subdomain string
	// Email and APIToken authenticate as "{email}/token:{token}".
	Email    string
	APIToken string
	// OAuthToken is a fixed OAuth access token sent as a bearer token.
	OAuthToken string
	// TokenSource, when set, supplies OAuth access tokens (issue 7); a 401
	// makes the client ask Refresh once and retry the request once. An error
	// from Token or Refresh that is (or wraps) a *Error keeps its Kind; any
	// other error becomes KindTemporary.
	TokenSource TokenSource
	// Timeout bounds one HTTP request, reading the body included. Default 15s.
	Timeout time.Duration
	// UserAgent is sent on every request. Default "deskrelay".
	UserAgent string
	// HTTPClient replaces the transport (tests). Optional. The client copies
	// it and turns redirects off (a redirected POST would become a GET).
	// It wins over Transport and MaxIdleConnsPerHost.
	HTTPClient *http.Client
	// Transport, when set, carries the client's requests: main builds one
	// with NewTransport and shares it among every account's client, so that
	// all of them draw on one pool of connections. The client never closes
	// it. Optional; it wins over MaxIdleConnsPerHost.
	Transport http.RoundTripper
	// MaxIdleConnsPerHost sizes the pool of the transport the client makes
	// for itself when neither HTTPClient nor Transport is set: the number
	// of idle connections kept for reuse, which should cover the workers
	// that call Zendesk at once (DESKRELAY_CONCURRENCY plus headroom).
	// Default DefaultMaxIdleConnsPerHost; must not be negative.
	MaxIdleConnsPerHost int
	// OnResponse, when set, is called after every HTTP exchange, failed ones
	// included, e.g. to feed the shared rate limiter with X-Rate-Limit-Remaining.
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
	cfg     Config
	base    string // scheme://host[/prefix], no trailing slash
	prefix  string // path prefix of base ("" for Zendesk itself)
	rc      *resty.Client
	secrets []string               // credentials to scrub from error messages
	bearer  atomic.Pointer[string] // the TokenSource's last token, for Scrub
}

// Scrub removes the client's credentials (the API token and its basic-auth
// form, the OAuth token, the last token of the TokenSource) from s: for
// callers that store or show text that may hold an echo of them.
func (c *Client) Scrub(s string) string {
	secrets := c.secrets
	if b := c.bearer.Load(); b != nil {
		secrets = append(secrets[:len(secrets):len(secrets)], *b)
	}
	return scrub(s, secrets)
}

func (c Config) withDefaults() Config {
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.UserAgent = cmp.Or(c.UserAgent, DefaultUserAgent)
	c.BaseURL = strings.TrimSpace(c.BaseURL)
	c.Subdomain = strings.ToLower(strings.TrimSpace(c.Subdomain))
	return c
}

// baseURL validates the URL fields and returns the base URL to use. Errors
// are *validate.FieldError naming the field, and never echo the value (it
// could hold credentials).
func (c Config) baseURL() (*url.URL, error) {
	if c.BaseURL != "" {
		return baseURLOf(c.BaseURL)
	}
	switch {
	case c.Subdomain == "":
		return nil, bad("Subdomain", "required (or the full base URL)")
	case strings.Contains(c.Subdomain, "."):
		return nil, bad("Subdomain", "only the subdomain, e.g. acme for acme.zendesk.com")
	}
	if problem := validate.Subdomain(c.Subdomain); problem != "" {
		return nil, bad("Subdomain", "%s", problem)
	}
	return &url.URL{Scheme: "https", Host: c.Subdomain + ".zendesk.com"}, nil
}

func baseURLOf(raw string) (*url.URL, error) {
	if problem := validate.HTTPURL(raw); problem != "" {
		return nil, bad("BaseURL", "%s", problem)
	}
	u, _ := url.Parse(raw)
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, bad("BaseURL", "must not contain a query or fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if strings.HasSuffix(u.Path, "/api/v2") {
		return nil, bad("BaseURL", "give the base URL without /api/v2")
	}
	return u, nil
}

func bad(field, format string, args ...any) error {
	return validate.Errorf("zendesk", field, format, args...)
}

func (c Config) validate() error {
	if _, err := c.baseURL(); err != nil {
		return err
	}
	if err := c.validateAPIToken(); err != nil {
		return err
	}
	if strings.ContainsAny(c.OAuthToken, " \t\r\n") {
		return bad("OAuthToken", "must not contain whitespace")
	}
	n := 0
	for _, set := range []bool{c.Email != "" || c.APIToken != "", c.OAuthToken != "", c.TokenSource != nil} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return bad("APIToken", "one way of authenticating is required: an email and API token, a fixed OAuth token, or OAuth with refresh")
	case n > 1:
		return bad("OAuthToken", "set only one way of authenticating: an email and API token, a fixed OAuth token, or OAuth with refresh")
	case c.Timeout < 0:
		return bad("Timeout", "must not be negative")
	case c.MaxIdleConnsPerHost < 0:
		return bad("MaxIdleConnsPerHost", "must not be negative")
	}
	return nil
}

// NewTransport returns an HTTP transport for Zendesk clients that keeps up
// to maxIdlePerHost idle connections per account (host) for reuse, 0 meaning
// DefaultMaxIdleConnsPerHost. There is no cap on idle connections across
// hosts: one transport serves many accounts, and an idle connection closes
// after 90 seconds (IdleConnTimeout) anyway. Proxy settings, timeouts and
// HTTP/2 are Go's defaults.
func NewTransport(maxIdlePerHost int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = cmp.Or(max(maxIdlePerHost, 0), DefaultMaxIdleConnsPerHost)
	t.MaxIdleConns = 0
	return t
}

// validateAPIToken checks API token auth: an email and a token together.
func (c Config) validateAPIToken() error {
	switch {
	case c.Email == "" && c.APIToken == "":
		return nil
	case c.Email == "":
		return bad("Email", "required with the API token")
	case c.APIToken == "":
		return bad("APIToken", "required with the email")
	case !strings.Contains(c.Email, "@") || strings.ContainsAny(c.Email, " \t\r\n:"):
		return bad("Email", "not an email address")
	case strings.ContainsAny(c.APIToken, " \t\r\n"):
		return bad("APIToken", "must not contain whitespace")
	}
	return nil
}

// New returns a Client, or an error naming the missing or conflicting setting.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	u, _ := cfg.baseURL()

	var hc http.Client
	switch {
	case cfg.HTTPClient != nil:
		hc = *cfg.HTTPClient
	case cfg.Transport != nil:
		hc.Transport = cfg.Transport
	default:
		hc.Transport = NewTransport(cfg.MaxIdleConnsPerHost)
	}
	hc.Timeout = 0 // per-request context deadline instead, body read included
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	rc := resty.NewWithClient(&hc).
		SetBaseURL(u.String()).
		SetRetryCount(0). // deskrelay's queues retry
		SetLogger(discardLogger{}).
		SetDisableWarn(true).
		SetHeader("User-Agent", cfg.UserAgent).
		SetHeader("Accept", "application/json")

	c := &Client{cfg: cfg, base: u.String(), prefix: u.Path, rc: rc}
	switch {
	case cfg.APIToken != "":
		rc.SetBasicAuth(cfg.Email+"/token", cfg.APIToken)
		c.secrets = append(c.secrets, cfg.Email+"/token:"+cfg.APIToken, cfg.APIToken, cfg.Email+"/token")
	case cfg.OAuthToken != "":
		rc.SetAuthToken(cfg.OAuthToken)
		c.secrets = append(c.secrets, cfg.OAuthToken)
	}
	return c, nil
}

// BaseURL returns the account's base URL (no credentials in it).
func (c *Client) BaseURL() string { return c.base }

type discardLogger struct{}

func (discardLogger) Errorf(string, ...any) {}
func (discardLogger) Warnf(string, ...any)  {}
func (discardLogger) Debugf(string, ...any) {}

// maxBody bounds a successful response body (an export page of 1,000
// events with comment bodies stays well under it).
const maxBody = 64 << 20

// call is one API call.
type call struct {
	op     string
	method string
	path   string     // below the base URL, starting with /api/v2/; may carry a query
	query  url.Values // added to path's query
	body   any        // sent as JSON when non-nil
	header map[string]string
	out    any // a 2xx JSON body is decoded into it when non-nil
}

// do runs a call: one exchange, or two when a TokenSource's token was
// rejected with 401 and Refresh gave a fresh one. It returns the final
// response's header.
func (c *Client) do(ctx context.Context, cl call) (http.Header, error) {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = marshalBody(cl.body); err != nil {
			return nil, &Error{Op: cl.op, Kind: KindInvalid, Message: "encode request: " + err.Error(), Err: err}
		}
	}
	if c.cfg.TokenSource == nil {
		return c.exchange(ctx, cl, payload, "")
	}
	token, err := c.cfg.TokenSource.Token(ctx)
	if err != nil {
		return nil, tokenError(cl.op, "get OAuth token", err)
	}
	h, err := c.exchange(ctx, cl, payload, token)
	if ze := AsError(err); ze == nil || ze.Status != http.StatusUnauthorized {
		return h, err
	}
	fresh, rerr := c.cfg.TokenSource.Refresh(ctx, token)
	if rerr != nil {
		ze := tokenError(cl.op, "refresh OAuth token", rerr)
		ze.Message = scrub(ze.Message, append(c.secrets[:len(c.secrets):len(c.secrets)], token))
		return nil, ze
	}
	return c.exchange(ctx, cl, payload, fresh)
}

// tokenError turns a TokenSource failure into a *Error: a *Error in the
// chain keeps its Kind, anything else is temporary. The message never holds
// a token (TokenSource errors are expected not to carry one either).
func tokenError(op, what string, err error) *Error {
	ze := &Error{Op: op, Kind: KindTemporary, Message: what + ": " + err.Error(), Err: err}
	if inner := AsError(err); inner != nil {
		ze.Kind = inner.Kind
		ze.Status = inner.Status
		ze.RetryAfter = inner.RetryAfter
	}
	return ze
}

// exchange performs one HTTP request and decodes or classifies its answer.
func (c *Client) exchange(ctx context.Context, cl call, payload []byte, bearer string) (http.Header, error) {
	secrets := c.secrets
	if bearer != "" {
		secrets = append(secrets[:len(secrets):len(secrets)], bearer)
		c.bearer.Store(&bearer)
	}
	x := exchangeResult{op: cl.op, method: cl.method, secrets: secrets, timeout: c.cfg.Timeout,
		rule: Classify(cl.method, cl.path)}

	rctx, cancel := context.WithTimeoutCause(ctx, c.cfg.Timeout, errRequestTimeout)
	defer cancel()
	tr := &writeTrace{}
	req := c.rc.R().
		SetContext(tr.with(rctx)).
		SetDoNotParseResponse(true)
	if cl.query != nil {
		req.SetQueryParamsFromValues(cl.query)
	}
	for k, v := range cl.header {
		req.SetHeader(k, v)
	}
	if bearer != "" {
		req.SetAuthToken(bearer)
	}
	if payload != nil {
		req.SetHeader("Content-Type", "application/json").SetBody(payload)
	}

	start := time.Now()
	resp, err := req.Execute(cl.method, cl.path)
	var raw *http.Response
	if resp != nil {
		raw = resp.RawResponse
	}
	if err == nil && raw == nil {
		err = errors.New("no response")
	}
	var body []byte
	if raw != nil {
		x.status = raw.StatusCode
		x.header = raw.Header
		limit := int64(maxErrorBody)
		if x.status >= 200 && x.status < 300 {
			limit = maxBody + 1
		}
		var rerr error
		body, rerr = io.ReadAll(io.LimitReader(raw.Body, limit))
		_ = raw.Body.Close()
		if x.status >= 200 && x.status < 300 {
			switch {
			case rerr != nil:
				x.err = fmt.Errorf("read response body: %w", rerr)
			case len(body) > maxBody:
				x.err = fmt.Errorf("response body over %d bytes", maxBody)
			}
		}
		x.body = body
	} else {
		x.err = err
	}
	x.wrote, x.traced = tr.wrote.Load(), tr.traced.Load()
	x.parentErr = ctx.Err()
	x.timedOut = errors.Is(context.Cause(rctx), errRequestTimeout)

	if x.err == nil && x.status/100 == 2 && cl.out != nil && len(strings.TrimSpace(string(body))) > 0 {
		if derr := decodeJSON(body, cl.out); derr != nil {
			x.err = fmt.Errorf("decode response: %w", derr)
			x.decodeErr = true
		}
	}
	ze := checkResponse(&x)
	c.report(&x, time.Since(start))
	if ze != nil {
		return x.header, ze
	}
	return x.header, nil
}

// report hands one exchange to Config.OnResponse, with its rate-limit
// figures attributed to the request's family.
func (c *Client) report(x *exchangeResult, d time.Duration) {
	if c.cfg.OnResponse == nil {
		return
	}
	r := Response{Op: x.op, StatusCode: x.status, Duration: d,
		Family: x.rule.Family, SpendsAccount: x.rule.SpendsAccount}
	if x.header != nil {
		r.RateLimit, r.Account = ParseRateLimits(x.header, x.rule)
		r.RequestID = requestID(x.header, x.secrets)
		r.RetryAfter, _ = ParseRetryAfter(x.header.Get("Retry-After"), time.Now())
	}
	c.cfg.OnResponse(r)
}

// relPath turns a next-page URL from Zendesk into a path below the base URL.
// Only the path and query are used: credentials are never sent to a host
// named in a response.
func (c *Client) relPath(next string) (string, error) {
	u, err := url.Parse(next)
	if err != nil {
		return "", errors.New("next page URL unreadable")
	}
	p := u.EscapedPath()
	if c.prefix != "" && strings.HasPrefix(p, c.prefix+"/") {
		p = strings.TrimPrefix(p, c.prefix)
	}
	if !strings.HasPrefix(p, "/api/v2/") {
		return "", errors.New("next page URL outside /api/v2")
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return p, nil
}

// maxPages bounds how many pages a list follows.
const maxPages = 1000

// pageLinks holds both paging styles: offset (next_page) and cursor
// (meta.has_more, meta.after_cursor, links.next).
type pageLinks struct {
	NextPage string `json:"next_page"`
	Meta     *struct {
		HasMore     bool   `json:"has_more"`
		AfterCursor string `json:"after_cursor"`
	} `json:"meta"`
	Links *struct {
		Next string `json:"next"`
	} `json:"links"`
}

func (p pageLinks) next() string {
	if p.Meta != nil {
		if p.Meta.HasMore && p.Links != nil && p.Links.Next != "" {
			return p.Links.Next
		}
		if p.Meta.HasMore && p.NextPage == "" {
			return ""
		}
		if !p.Meta.HasMore {
			return ""
		}
	}
	return p.NextPage
}

// listAll follows every page of a list whose items are under key.
func listAll[T any](ctx context.Context, c *Client, op, path string, q url.Values, key string) ([]T, error) {
	var all []T
	seen := map[string]bool{}
	for range maxPages {
		var body json.RawMessage
		if _, err := c.do(ctx, call{op: op, method: http.MethodGet, path: path, query: q, out: &body}); err != nil {
			return all, err
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal(body, &page); err != nil {
			return all, &Error{Op: op, Kind: KindTemporary, Message: "decode page: " + err.Error(), Err: err}
		}
		if raw, ok := page[key]; ok {
			var items []T
			if err := json.Unmarshal(raw, &items); err != nil {
				return all, &Error{Op: op, Kind: KindTemporary, Message: "decode " + key + ": " + err.Error(), Err: err}
			}
			all = append(all, items...)
		}
		var links pageLinks
		_ = json.Unmarshal(body, &links) // lenient: unreadable links end paging
		next := links.next()
		if next == "" {
			return all, nil
		}
		rel, err := c.relPath(next)
		if err != nil {
			return all, &Error{Op: op, Kind: KindInvalid, Message: err.Error()}
		}
		if seen[rel] {
			return all, &Error{Op: op, Kind: KindTemporary, Message: "paging loops: the same next page twice"}
		}
		seen[rel] = true
		path, q = rel, nil
	}
	return all, &Error{Op: op, Kind: KindTemporary, Message: fmt.Sprintf("more than %d pages", maxPages)}
}

// cursorPaging asks for cursor paging, which Zendesk recommends (offset
// paging stops after 100 pages); answers in either style are followed.
func cursorPaging() url.Values { return url.Values{"page[size]": {"100"}} }

func id64(id int64) string { return strconv.FormatInt(id, 10) }

// CreateTicket creates a ticket. idempotencyKey is sent as Idempotency-Key.
// https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#create-ticket
func (c *Client) CreateTicket(ctx context.Context, t NewTicket, idempotencyKey string) (*TicketWrite, error) {
	var w TicketWrite
	cl := call{op: "create ticket", method: http.MethodPost, path: "/api/v2/tickets",
		body: map[string]any{"ticket": t}, out: &w}
	if idempotencyKey != "" {
		cl.header = map[string]string{"Idempotency-Key": idempotencyKey}
	}
	h, err := c.do(ctx, cl)
	if err != nil {
		return nil, err
	}
	w.IdempotencyHit = strings.EqualFold(strings.TrimSpace(h.Get("X-Idempotency-Lookup")), "hit")
	return &w, nil
}

// UpdateTicket updates a ticket, e.g. to add a comment with custom metadata.
// https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-ticket
func (c *Client) UpdateTicket(ctx context.Context, id int64, u TicketUpdate) (*TicketWrite, error) {
	var w TicketWrite
	_, err := c.do(ctx, call{op: "update ticket", method: http.MethodPut, path: "/api/v2/tickets/" + id64(id),
		body: map[string]any{"ticket": u}, out: &w})
	if err != nil {
		return nil, err
	}
	return &w, nil
}

// AddComment adds a comment to a ticket with the given custom metadata.
func (c *Client) AddComment(ctx context.Context, id int64, comment CommentInput, metadata map[string]any) (*TicketWrite, error) {
	return c.UpdateTicket(ctx, id, TicketUpdate{Comment: &comment, Metadata: metadata})
}

// GetTicket shows one ticket.
// https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#show-ticket
func (c *Client) GetTicket(ctx context.Context, id int64) (*Ticket, error) {
	var out struct {
		Ticket Ticket `json:"ticket"`
	}
	if _, err := c.do(ctx, call{op: "get ticket", method: http.MethodGet, path: "/api/v2/tickets/" + id64(id), out: &out}); err != nil {
		return nil, err
	}
	return &out.Ticket, nil
}

// TicketsByExternalID lists the tickets with the given external_id.
// https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#list-tickets
func (c *Client) TicketsByExternalID(ctx context.Context, externalID string) ([]Ticket, error) {
	return listAll[Ticket](ctx, c, "list tickets by external id", "/api/v2/tickets", url.Values{"external_id": {externalID}}, "tickets")
}

// ListComments lists all comments of a ticket, oldest first, following pages.
// https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/#list-comments
func (c *Client) ListComments(ctx context.Context, ticketID int64) ([]Comment, error) {
	return listAll[Comment](ctx, c, "list comments", "/api/v2/tickets/"+id64(ticketID)+"/comments", cursorPaging(), "comments")
}

// ListAudits lists all audits of a ticket, following pages.
// https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_audits/#list-audits-for-a-ticket
func (c *Client) ListAudits(ctx context.Context, ticketID int64) ([]Audit, error) {
	return listAll[Audit](ctx, c, "list audits", "/api/v2/tickets/"+id64(ticketID)+"/audits", cursorPaging(), "audits")
}

// TicketEvents reads one page of the incremental ticket events export with
// include=comment_events, starting at start (Zendesk wants it at least a
// minute in the past).
// https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/#incremental-ticket-event-export
func (c *Client) TicketEvents(ctx context.Context, start time.Time) (*TicketEventsPage, error) {
	var p TicketEventsPage
	q := url.Values{"start_time": {strconv.FormatInt(start.Unix(), 10)}, "include": {"comment_events"}}
	if _, err := c.do(ctx, call{op: "ticket events", method: http.MethodGet, path: "/api/v2/incremental/ticket_events", query: q, out: &p}); err != nil {
		return nil, err
	}
	return &p, nil
}

// IncrementalTickets reads one page of the cursor-based ticket export: from
// start when cursor is empty, else from cursor.
// https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/#incremental-ticket-export-cursor-based
func (c *Client) IncrementalTickets(ctx context.Context, start time.Time, cursor string) (*TicketExportPage, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	} else {
		q.Set("start_time", strconv.FormatInt(start.Unix(), 10))
	}
	var p TicketExportPage
	if _, err := c.do(ctx, call{op: "incremental tickets", method: http.MethodGet, path: "/api/v2/incremental/tickets/cursor", query: q, out: &p}); err != nil {
		return nil, err
	}
	return &p, nil
}

// GetWebhook shows a webhook.
// https://developer.zendesk.com/api-reference/webhooks/webhooks-api/webhooks/#show-webhook
func (c *Client) GetWebhook(ctx context.Context, id string) (*Webhook, error) {
	var out struct {
		Webhook Webhook `json:"webhook"`
	}
	if _, err := c.do(ctx, call{op: "get webhook", method: http.MethodGet, path: "/api/v2/webhooks/" + url.PathEscape(id), out: &out}); err != nil {
		return nil, err
	}
	return &out.Webhook, nil
}

// ActivateWebhook sets a webhook's status to active.
// https://developer.zendesk.com/api-reference/webhooks/webhooks-api/webhooks/#patch-webhook
func (c *Client) ActivateWebhook(ctx context.Context, id string) error {
	_, err := c.do(ctx, call{op: "activate webhook", method: http.MethodPatch, path: "/api/v2/webhooks/" + url.PathEscape(id),
		body: map[string]any{"webhook": map[string]string{"status": "active"}}})
	return err
}

// WebhookSigningSecret reads a webhook's signing secret.
// https://developer.zendesk.com/api-reference/webhooks/webhooks-api/webhooks/#show-webhook-signing-secret
func (c *Client) WebhookSigningSecret(ctx context.Context, id string) (string, error) {
	var out struct {
		SigningSecret struct {
			Algorithm string `json:"algorithm"`
			Secret    string `json:"secret"`
		} `json:"signing_secret"`
	}
	if _, err := c.do(ctx, call{op: "get webhook signing secret", method: http.MethodGet, path: "/api/v2/webhooks/" + url.PathEscape(id) + "/signing_secret", out: &out}); err != nil {
		return "", err
	}
	if out.SigningSecret.Secret == "" {
		return "", &Error{Op: "get webhook signing secret", Kind: KindInvalid, Message: "answer holds no signing_secret.secret"}
	}
	return out.SigningSecret.Secret, nil
}

// ListInvocations lists one page of a webhook's invocations.
// https://developer.zendesk.com/api-reference/webhooks/webhooks-api/webhooks/#list-webhook-invocations
func (c *Client) ListInvocations(ctx context.Context, webhookID string, f InvocationFilter) (*InvocationsPage, error) {
	q := url.Values{}
	if !f.From.IsZero() {
		q.Set("filter[from_ts]", f.From.UTC().Format(time.RFC3339))
	}
	if !f.To.IsZero() {
		q.Set("filter[to_ts]", f.To.UTC().Format(time.RFC3339))
	}
	if f.Status != "" {
		q.Set("filter[status]", f.Status)
	}
	if f.After != "" {
		q.Set("page[after]", f.After)
	}
	if f.PageSize > 0 {
		q.Set("page[size]", strconv.Itoa(f.PageSize))
	}
	var out struct {
		Invocations []Invocation `json:"invocations"`
		pageLinks
	}
	if _, err := c.do(ctx, call{op: "list webhook invocations", method: http.MethodGet,
		path: "/api/v2/webhooks/" + url.PathEscape(webhookID) + "/invocations", query: q, out: &out}); err != nil {
		return nil, err
	}
	p := &InvocationsPage{Invocations: out.Invocations}
	if out.Meta != nil {
		p.HasMore, p.AfterCursor = out.Meta.HasMore, out.Meta.AfterCursor
	}
	if p.AfterCursor == "" && out.Links != nil && out.Links.Next != "" {
		if u, err := url.Parse(out.Links.Next); err == nil {
			p.AfterCursor = u.Query().Get("page[after]")
			if out.Meta == nil {
				p.HasMore = p.AfterCursor != ""
			}
		}
	}
	return p, nil
}

// InvocationAttempts lists the attempts of one invocation, with their payloads.
// https://developer.zendesk.com/api-reference/webhooks/webhooks-api/webhooks/#list-webhook-invocation-attempts
func (c *Client) InvocationAttempts(ctx context.Context, webhookID, invocationID string) ([]Attempt, error) {
	return listAll[Attempt](ctx, c, "list webhook invocation attempts",
		"/api/v2/webhooks/"+url.PathEscape(webhookID)+"/invocations/"+url.PathEscape(invocationID)+"/attempts", nil, "attempts")
}

// GetTarget shows a legacy target.
// https://developer.zendesk.com/api-reference/ticketing/targets/targets/#show-target
func (c *Client) GetTarget(ctx context.Context, id int64) (*Target, error) {
	var out struct {
		Target Target `json:"target"`
	}
	if _, err := c.do(ctx, call{op: "get target", method: http.MethodGet, path: "/api/v2/targets/" + id64(id), out: &out}); err != nil {
		return nil, err
	}
	return &out.Target, nil
}

// ActivateTarget sets a legacy target active.
// https://developer.zendesk.com/api-reference/ticketing/targets/targets/#update-target
func (c *Client) ActivateTarget(ctx context.Context, id int64) error {
	_, err := c.do(ctx, call{op: "activate target", method: http.MethodPut, path: "/api/v2/targets/" + id64(id),
		body: map[string]any{"target": map[string]bool{"active": true}}})
	return err
}

// TargetFailures lists recent target failures.
// https://developer.zendesk.com/api-reference/ticketing/targets/target_failures/
func (c *Client) TargetFailures(ctx context.Context) ([]TargetFailure, error) {
	return listAll[TargetFailure](ctx, c, "list target failures", "/api/v2/target_failures", nil, "target_failures")
}

// Me returns the authenticated user; the credential probe.
// https://developer.zendesk.com/api-reference/ticketing/users/users/#show-the-currently-authenticated-user
func (c *Client) Me(ctx context.Context) (*User, error) {
	return c.getUser(ctx, "get current user", "/api/v2/users/me")
}

// CreateOrUpdateUser finds or creates an end user by email or external id.
// https://developer.zendesk.com/api-reference/ticketing/users/users/#create-or-update-user
func (c *Client) CreateOrUpdateUser(ctx context.Context, u UserInput) (*User, error) {
	var out struct {
		User User `json:"user"`
	}
	if _, err := c.do(ctx, call{op: "create or update user", method: http.MethodPost, path: "/api/v2/users/create_or_update",
		body: map[string]any{"user": u}, out: &out}); err != nil {
		return nil, err
	}
	return &out.User, nil
}

// GetUser shows one user (e.g. to tell an agent's comment from an end user's).
// https://developer.zendesk.com/api-reference/ticketing/users/users/#show-user
func (c *Client) GetUser(ctx context.Context, id int64) (*User, error) {
	return c.getUser(ctx, "get user", "/api/v2/users/"+id64(id))
}

func (c *Client) getUser(ctx context.Context, op, path string) (*User, error) {
	var out struct {
		User User `json:"user"`
	}
	if _, err := c.do(ctx, call{op: op, method: http.MethodGet, path: path, out: &out}); err != nil {
		return nil, err
	}
	return &out.User, nil
}
