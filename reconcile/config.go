package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/validate"
	"github.com/deskrelay/deskrelay/zendesk"
)

// Defaults for Config.
const (
	DefaultInterval        = 5 * time.Minute
	DefaultLag             = 90 * time.Second
	DefaultInitialLookback = time.Hour
	DefaultExportLimit     = 10
	DefaultExportWindow    = time.Minute
	DefaultLeaseTTL        = 30 * time.Second
	DefaultRunTimeout      = 30 * time.Minute
	DefaultMaxRewind       = 24 * time.Hour
	DefaultFailureWarn     = 10
	DefaultSignatureRun    = 3
	DefaultMaxAttempts     = 5
	DefaultRetryBaseDelay  = time.Second
	DefaultConcurrency     = 8
	// MinZendeskLag is the part of the export Zendesk hides: start_time must
	// be at least this far in the past.
	MinZendeskLag = time.Minute
)

// Config configures a Reconciler. Package main fills it from the DESKRELAY_*
// settings; the zero value of every field but Interval means its default.
type Config struct {
	// Interval is how often the scheduled run happens
	// (DESKRELAY_RECONCILE_INTERVAL); 0 turns the schedule off (Backfill and
	// the guardian's commands still work).
	Interval time.Duration
	// Lag is how far behind now a window ends: Zendesk's export hides the
	// last minute, so the default is 90s (60s plus a margin). Smaller values
	// are for fakes (tests, demo) only. Default DefaultLag.
	Lag time.Duration
	// InitialLookback is where the very first scheduled run starts (now −
	// Lag − InitialLookback) when Redis holds no checkpoint yet. Default 1h.
	InitialLookback time.Duration
	// ExportLimit and ExportWindow are the incremental export's own rate
	// limit (Zendesk: 10 requests a minute; 30 with High Volume), enforced
	// across replicas in Redis. Defaults 10 and 1m; a negative ExportLimit
	// turns the limit off (tests against a fake only).
	ExportLimit  int
	ExportWindow time.Duration
	// LeaseTTL is how long the scheduled run's lease lives without renewal:
	// after a crash the next run can start this much later. Default 30s.
	LeaseTTL time.Duration
	// RunTimeout bounds one scheduled run (asynq task timeout); a run cut
	// short resumes from its checkpoint. Default 30m.
	RunTimeout time.Duration
	// Concurrency is how many tickets of a page are published in parallel
	// (events of one ticket stay in order). Default 8.
	Concurrency int
	// MaxAttempts is how many times one Zendesk request is tried on a
	// temporary failure (5xx, timeout) before the run stops with an error;
	// rate limits (429) are waited out and do not count. Default 5.
	MaxAttempts int
	// RetryBaseDelay is the first backoff after a temporary failure
	// (doubling, capped at 30s). Default 1s.
	RetryBaseDelay time.Duration

	// WebhookID is the webhook that calls deskrelay
	// (DESKRELAY_ZENDESK_WEBHOOK_ID); the guardian watches it.
	WebhookID string
	// TargetID is the legacy target that calls deskrelay
	// (DESKRELAY_ZENDESK_TARGET_ID), watched when WebhookID is empty.
	TargetID int64
	// PublicURL is the URL Zendesk calls (DESKRELAY_PUBLIC_URL). When set,
	// the guardian re-enables only a webhook whose endpoint is PublicURL +
	// "/v1/zendesk/webhook" (a target: + "/v1/zendesk/target").
	PublicURL string
	// FailureWarn is the consecutive failure count (target_failures) at
	// which the guardian warns, before Zendesk's 21. Default 10.
	FailureWarn int
	// SignatureFailureRun is the length of a run of webhook signature
	// failures from which deskrelay's receiver counts as unhealthy and the
	// guardian stops re-enabling. Default 3.
	SignatureFailureRun int
	// MaxRewind bounds how far back the guardian moves the next run when it
	// re-enables a webhook (the gap since the last event received). Default 24h.
	MaxRewind time.Duration

	// Invocations configures the recovery of dropped webhook events from
	// the webhook's invocations and the circuit-breaker early warning
	// (invocations.go); both need WebhookID.
	Invocations InvocationsConfig

	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	c.Lag = cmp.Or(c.Lag, DefaultLag)
	c.InitialLookback = cmp.Or(c.InitialLookback, DefaultInitialLookback)
	c.ExportLimit = cmp.Or(c.ExportLimit, DefaultExportLimit)
	c.ExportWindow = cmp.Or(c.ExportWindow, DefaultExportWindow)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, DefaultLeaseTTL)
	c.RunTimeout = cmp.Or(c.RunTimeout, DefaultRunTimeout)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, DefaultMaxAttempts)
	c.RetryBaseDelay = cmp.Or(c.RetryBaseDelay, DefaultRetryBaseDelay)
	c.FailureWarn = cmp.Or(c.FailureWarn, DefaultFailureWarn)
	c.SignatureFailureRun = cmp.Or(c.SignatureFailureRun, DefaultSignatureRun)
	c.MaxRewind = cmp.Or(c.MaxRewind, DefaultMaxRewind)
	c.Invocations = c.Invocations.withDefaults()
	c.PublicURL = strings.TrimRight(strings.TrimSpace(c.PublicURL), "/")
	c.WebhookID = strings.TrimSpace(c.WebhookID)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks c (after its defaults), reporting each bad field as a
// *validate.FieldError.
func (c Config) Validate() error { return c.withDefaults().validate() }

func (c Config) validate() error {
	bad := func(field, format string, args ...any) error {
		return validate.Errorf("reconcile", field, format, args...)
	}
	switch {
	case c.Interval < 0:
		return bad("Interval", "must not be negative (0 turns it off)")
	case c.Interval > 0 && c.Interval < time.Second:
		return bad("Interval", "at least 1s (0 turns it off)")
	case c.Lag < 0:
		return bad("Lag", "must not be negative")
	case c.InitialLookback < 0:
		return bad("InitialLookback", "must not be negative")
	case c.ExportWindow < 0:
		return bad("ExportWindow", "must not be negative")
	case c.LeaseTTL < 100*time.Millisecond:
		return bad("LeaseTTL", "at least 100ms")
	case c.RunTimeout < 0 || c.Concurrency < 0 || c.MaxAttempts < 0 || c.RetryBaseDelay < 0:
		return bad("RunTimeout", "RunTimeout, Concurrency, MaxAttempts and RetryBaseDelay must not be negative")
	case c.WebhookID != "" && c.TargetID != 0:
		return bad("TargetID", "set only one of WebhookID and TargetID")
	case c.TargetID < 0:
		return bad("TargetID", "not a target id")
	}
	if err := c.Invocations.validate(); err != nil {
		return err
	}
	if c.PublicURL != "" {
		if problem := validate.HTTPURL(c.PublicURL); problem != "" {
			return bad("PublicURL", "%s", problem)
		}
	}
	return nil
}

// Zendesk is the part of *zendesk.Client the reconciler uses.
type Zendesk interface {
	TicketEvents(ctx context.Context, start time.Time) (*zendesk.TicketEventsPage, error)
	GetUser(ctx context.Context, id int64) (*zendesk.User, error)
	GetWebhook(ctx context.Context, id string) (*zendesk.Webhook, error)
	ActivateWebhook(ctx context.Context, id string) error
	GetTarget(ctx context.Context, id int64) (*zendesk.Target, error)
	ActivateTarget(ctx context.Context, id int64) error
	TargetFailures(ctx context.Context) ([]zendesk.TargetFailure, error)
	Invocations
}

// Publisher is the part of *events.Publisher the reconciler uses: the same
// rules, ledger and delivery tasks as the webhook path.
type Publisher interface {
	Publish(ctx context.Context, ev events.Event) (events.Outcome, error)
	Check(ctx context.Context, ev events.Event) (events.Outcome, error)
	Ledger() *events.Ledger
	// ResolveComment reads the comment a recovered trigger body names
	// (invocations.go), as the webhook worker does.
	ResolveComment(ctx context.Context, pl *events.Payload, zd events.CommentReader, src events.Source, fallback time.Time) (*events.Event, string, error)
}

// Tickets is the part of *relay.Tickets the reconciler reads (which tickets
// deskrelay manages, which comments it wrote) before asking Zendesk who
// wrote a comment.
type Tickets interface {
	ConversationOf(ctx context.Context, ticketID int64) (string, bool, error)
	IsOwnComment(ctx context.Context, commentID int64) (bool, error)
}

// Limiter is the account-wide Zendesk rate limiter shared by every
// replica (*relay.Limiter): Wait blocks until one request may be made.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Receiver reports the health of deskrelay's own webhook receiver (inbound
// implements it). When Deps.Receiver is nil the reconciler reads the same
// keys inbound writes (keys.WebhookLastReceived, keys.WebhookSignatureFailures).
type Receiver interface {
	// LastReceived is when a verified webhook event last arrived; zero when
	// none is recorded.
	LastReceived(ctx context.Context) (time.Time, error)
	// SignatureFailures is the length of the current run of webhook
	// signature failures (0 after a good signature).
	SignatureFailures(ctx context.Context) (int, error)
}

// Deps are the Reconciler's collaborators.
type Deps struct {
	// Redis holds the checkpoint, the lease and the export limiter, and is
	// asynq's Redis (required). Not closed by the Reconciler.
	Redis redis.UniversalClient
	// Zendesk is the API client (required).
	Zendesk Zendesk
	// Publisher makes events durable sink deliveries (required).
	Publisher Publisher
	// Tickets is the ticket record; default relay.NewTickets(Redis).
	Tickets Tickets
	// Limiter is the shared account limiter; nil means none.
	Limiter Limiter
	// Receiver reports the webhook receiver's health; nil reads its keys.
	Receiver Receiver
	// Log receives the reconciler's logs.
	Log zerolog.Logger
	// Metrics registers the reconciler's metrics; nil means none.
	Metrics prometheus.Registerer
}

func (d Deps) validate() error {
	switch {
	case d.Redis == nil:
		return fmt.Errorf("reconcile: Deps.Redis is required")
	case d.Zendesk == nil:
		return fmt.Errorf("reconcile: Deps.Zendesk is required")
	case d.Publisher == nil:
		return fmt.Errorf("reconcile: Deps.Publisher is required")
	}
	return nil
}
