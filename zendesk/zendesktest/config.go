package zendesktest

import (
	"cmp"
	"fmt"
	"time"
)

// Default credentials accepted when Config leaves them empty.
const (
	DefaultEmail    = "relay@example.com"
	DefaultAPIToken = "zendesktest-token"
	// DefaultAccountID is the account id webhooks carry when Config.AccountID is 0.
	DefaultAccountID = 123456
)

// Config configures a fake Zendesk. Its zero value gives Zendesk's documented
// defaults (plan Team) and the default credentials above.
type Config struct {
	// Email and APIToken are the accepted API-token credentials, sent as
	// basic auth "{email}/token:{token}". Default DefaultEmail/DefaultAPIToken.
	Email, APIToken string
	// OAuthTokens are fixed bearer tokens that are always accepted (until
	// RevokeCredentials).
	OAuthTokens []string
	// AccountID is the Zendesk account id in webhook payloads and headers.
	// Default DefaultAccountID.
	AccountID int64
	// BaseURL is the base URL that links in responses (url, next_page,
	// Location, after_url) use. Default: the server's own URL. Set it when
	// the fake is reached through a proxy (as the fakezendesk command does).
	BaseURL string
	// Subdomain appears in nothing but the agent-facing URLs; default "fake".
	Subdomain string

	// RateLimit is the number of requests per Window per account. Default 200.
	RateLimit int
	// UpdateTicketLimit is the number of Update Ticket requests per Window.
	// Default 100.
	UpdateTicketLimit int
	// ExportLimit is the number of incremental export requests per Window.
	// Default 10.
	ExportLimit int
	// PerTicketUpdateLimit is the number of updates one user may make to one
	// ticket per PerTicketWindow (Zendesk: 30 per 10 minutes); over it,
	// Update Ticket answers 429 with Retry-After. Default 30; negative: off.
	PerTicketUpdateLimit int
	// PerTicketWindow is the window of PerTicketUpdateLimit. Default 10m.
	PerTicketWindow time.Duration
	// WebhooksAPILimit is the number of Webhooks API requests per Window;
	// they do not spend RateLimit and report this budget in X-Rate-Limit.
	// Default 100.
	WebhooksAPILimit int
	// UserCreateLimit is the number of POST /users/create_or_update requests
	// per Window. Default 5.
	UserCreateLimit int
	// Window is the rate-limit window. Default 1 minute.
	Window time.Duration

	// ExportLag hides the last ExportLag of changes from the incremental
	// exports, which also reject a start_time newer than now-ExportLag with
	// 400. Default 60s; a negative value means no lag at all.
	ExportLag time.Duration
	// ExportPageSize is the number of items per incremental export page.
	// Default 1000 (Zendesk's).
	ExportPageSize int
	// MaxComments is the number of comments a ticket may hold before updates
	// that add one answer 422. Default 5000.
	MaxComments int

	// JobLimit is how many background jobs (update_many) may be queued or
	// running at once; past it update_many answers 429 (Zendesk: 30 per
	// account). Default 30.
	JobLimit int
	// JobDelay is how long a job stays queued before it works on its
	// tickets: Zendesk's seconds, scaled down. Default 200ms.
	JobDelay time.Duration
	// JobItemDelay is how long a working job takes per ticket after the
	// first. Default 0.
	JobItemDelay time.Duration
	// JobStatusTTL is how long a job's status can be read after the job was
	// queued; then GET /api/v2/job_statuses/{id} answers 404. Default 1h
	// (the shorter of the two figures Zendesk's reference has given).
	JobStatusTTL time.Duration
	// BatchSkipsUpdateLimit is the optimistic reading of the documentation:
	// tickets updated by a batch job do not spend Update Ticket's budget
	// per account (UpdateTicketLimit). Off by default: each ticket a job
	// updates spends one, and a ticket met with the budget spent fails in
	// the job's results. The per-ticket limit applies either way.
	BatchSkipsUpdateLimit bool

	// Now is the clock for timestamps, windows and expiries. Default time.Now.
	Now func() time.Time
	// IdempotencyTTL is how long an Idempotency-Key is remembered. Default 2h.
	IdempotencyTTL time.Duration
	// AccessTokenTTL is the lifetime of OAuth access tokens issued by
	// POST /oauth/tokens. Default 1h.
	AccessTokenTTL time.Duration

	// LostResponseDelay: when a response is lost (LoseNext, LoseResponses),
	// the fake holds the connection this long before closing it without an
	// answer; 0 closes it at once.
	LostResponseDelay time.Duration

	// WebhookTimeout is how long a webhook or target delivery waits for an
	// answer. Default 10s.
	WebhookTimeout time.Duration
	// WebhookMaxRetryWait caps how long the fake sleeps before retrying a
	// webhook delivery (it honours Retry-After up to this). Default 1s.
	WebhookMaxRetryWait time.Duration
	// CircuitWindow is the circuit breaker's look-back window. Default 5m.
	CircuitWindow time.Duration
	// CircuitMinRequests is the number of requests in CircuitWindow below
	// which the failure ratio does not trip the breaker. Default 100.
	CircuitMinRequests int
	// CircuitFailureRatio trips the breaker when at least this share of the
	// requests in CircuitWindow failed. Default 0.7.
	CircuitFailureRatio float64
	// CircuitMaxErrors trips the breaker when more errors than this happened
	// in CircuitWindow. Default 1000.
	CircuitMaxErrors int
	// CircuitPause is how long a tripped breaker drops events before it
	// probes with one request. Default 5s.
	CircuitPause time.Duration
	// NotifyAPIWrites makes ticket creates and updates made through the API
	// notify webhooks and targets too, as real Zendesk does (the "echo" of
	// one's own writes), asynchronously; WaitDeliveries waits for them. Off
	// by default: then only agent actions notify, synchronously.
	NotifyAPIWrites bool
	// TargetMaxFailures is the number of consecutive failed deliveries after
	// which a legacy target is deactivated. Default 21.
	TargetMaxFailures int

	// RecordLimit is how many requests Requests keeps (the oldest are
	// forgotten first). Default 100000.
	RecordLimit int

	// Logf, when set, receives a line per notable event (unknown paths,
	// deliveries). Never given credentials.
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	if c.Email == "" && c.APIToken == "" {
		c.Email, c.APIToken = DefaultEmail, DefaultAPIToken
	}
	c.AccountID = cmp.Or(c.AccountID, DefaultAccountID)
	c.Subdomain = cmp.Or(c.Subdomain, "fake")
	c.RateLimit = cmp.Or(c.RateLimit, 200)
	c.UpdateTicketLimit = cmp.Or(c.UpdateTicketLimit, 100)
	c.ExportLimit = cmp.Or(c.ExportLimit, 10)
	c.UserCreateLimit = cmp.Or(c.UserCreateLimit, 5)
	c.WebhooksAPILimit = cmp.Or(c.WebhooksAPILimit, 100)
	c.PerTicketUpdateLimit = cmp.Or(c.PerTicketUpdateLimit, 30)
	c.PerTicketWindow = cmp.Or(c.PerTicketWindow, 10*time.Minute)
	c.Window = cmp.Or(c.Window, time.Minute)
	c.ExportLag = cmp.Or(c.ExportLag, 60*time.Second)
	if c.ExportLag < 0 {
		c.ExportLag = 0
	}
	c.ExportPageSize = cmp.Or(c.ExportPageSize, 1000)
	c.MaxComments = cmp.Or(c.MaxComments, 5000)
	c.JobLimit = cmp.Or(c.JobLimit, 30)
	c.JobDelay = cmp.Or(c.JobDelay, 200*time.Millisecond)
	c.JobStatusTTL = cmp.Or(c.JobStatusTTL, time.Hour)
	if c.Now == nil {
		c.Now = time.Now
	}
	c.IdempotencyTTL = cmp.Or(c.IdempotencyTTL, 2*time.Hour)
	c.AccessTokenTTL = cmp.Or(c.AccessTokenTTL, time.Hour)
	c.WebhookTimeout = cmp.Or(c.WebhookTimeout, 10*time.Second)
	c.WebhookMaxRetryWait = cmp.Or(c.WebhookMaxRetryWait, time.Second)
	c.CircuitWindow = cmp.Or(c.CircuitWindow, 5*time.Minute)
	c.CircuitMinRequests = cmp.Or(c.CircuitMinRequests, 100)
	c.CircuitFailureRatio = cmp.Or(c.CircuitFailureRatio, 0.7)
	c.CircuitMaxErrors = cmp.Or(c.CircuitMaxErrors, 1000)
	c.CircuitPause = cmp.Or(c.CircuitPause, 5*time.Second)
	c.TargetMaxFailures = cmp.Or(c.TargetMaxFailures, 21)
	c.RecordLimit = cmp.Or(c.RecordLimit, 100000)
	return c
}

func (c Config) validate() error {
	switch {
	case c.RateLimit < 0, c.UpdateTicketLimit < 0, c.ExportLimit < 0, c.UserCreateLimit < 0, c.WebhooksAPILimit < 0:
		return fmt.Errorf("zendesktest: rate limits must not be negative")
	case c.Window < 0:
		return fmt.Errorf("zendesktest: Window must not be negative")
	case c.JobLimit < 0 || c.JobDelay < 0 || c.JobItemDelay < 0 || c.JobStatusTTL < 0:
		return fmt.Errorf("zendesktest: JobLimit, JobDelay, JobItemDelay and JobStatusTTL must not be negative")
	case c.ExportPageSize < 0 || c.MaxComments < 0:
		return fmt.Errorf("zendesktest: ExportPageSize and MaxComments must not be negative")
	case c.CircuitFailureRatio < 0 || c.CircuitFailureRatio > 1:
		return fmt.Errorf("zendesktest: CircuitFailureRatio must be within [0, 1]")
	}
	return nil
}
