package reconcile

import (
	"cmp"
	"errors"
	"strings"
	"time"

	"github.com/deskrelay/deskrelay/internal/validate"
)

// Defaults for Config.
const (
	DefaultLag             = 90 * time.Second
	DefaultInitialLookback = time.Hour
	DefaultExportLimit     = 10
	DefaultExportWindow    = time.Minute
	DefaultLeaseTTL        = 30 * time.Second
	DefaultRunTimeout      = 30 * time.Minute
	DefaultMaxRewind       = 24 * time.Hour
	DefaultFailureWarn     = 10
	DefaultMaxAttempts     = 5
	DefaultRetryBaseDelay  = time.Second
	DefaultConcurrency     = 8
	// MinZendeskLag is the part of the export Zendesk hides: start_time must
	// be at least this far in the past.
	MinZendeskLag = time.Minute
)

// Config configures a Reconciler. Package main fills it from its settings
// (docs/ARCHITECTURE.md says which setting lands in which field); the zero
// value of every field but Interval means its default. Validation errors
// name the field.
type Config struct {
	// Interval is how often the scheduled run happens; 0 turns the schedule
	// and the breaker watch off (Backfill and the guardian's commands still
	// work).
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

	// WebhookID is the webhook that calls deskrelay; the guardian watches
	// it.
	WebhookID string
	// TargetID is the legacy target that calls deskrelay, watched when
	// WebhookID is empty.
	TargetID int64
	// PublicURL is the URL Zendesk calls. When set,
	// the guardian re-enables only a webhook whose endpoint is PublicURL +
	// "/v1/zendesk/webhook" (a target: + "/v1/zendesk/target").
	PublicURL string
	// FailureWarn is the consecutive failure count (target_failures) at
	// which the guardian warns, before Zendesk's 21. Default 10.
	FailureWarn int
	// WebhookAutoEnable makes the scheduled run re-activate an inactive
	// webhook (DESKRELAY_WEBHOOK_AUTO_ENABLE, default false). Zendesk never
	// switches a webhook off for failures, so an inactive one was switched
	// off by a person or an app: by default the guardian reports it (log,
	// /v1/status, deskrelay_webhook_active) and the reconciler backfills;
	// Guardian.Enable (`deskrelay webhook enable`) re-activates it on
	// demand. A legacy target that Zendesk deactivated is re-activated
	// whatever this says.
	WebhookAutoEnable bool
	// MaxRewind bounds how far back the guardian moves the next run when it
	// re-enables a webhook (the gap since the last event received). Default 24h.
	MaxRewind time.Duration

	// BreakerCheckInterval is how often the breaker watch (WatchBreaker)
	// runs the webhook's early warning between reconcile runs. Default
	// DefaultBreakerCheckInterval; shorter values are for tests.
	BreakerCheckInterval time.Duration

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
	c.MaxRewind = cmp.Or(c.MaxRewind, DefaultMaxRewind)
	c.BreakerCheckInterval = cmp.Or(c.BreakerCheckInterval, DefaultBreakerCheckInterval)
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
	case c.BreakerCheckInterval < 0:
		return bad("BreakerCheckInterval", "must not be negative")
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

// Defaults for InvocationsConfig.
const (
	DefaultInvocationsPageSize  = 100
	DefaultInvocationsMaxPerRun = 200
	DefaultInvocationsListPages = 10
	DefaultBreakerWindow        = 5 * time.Minute
	DefaultBreakerWarnRatio     = 0.5
	DefaultBreakerWarnRequests  = 50
	DefaultBreakerWarnErrors    = 500
	DefaultBreakerMaxPages      = 20
)

// InvocationsConfig configures the recovery of webhook events from the
// webhook's invocations (Zendesk keeps their exact payloads for 7 days) and
// the early warning before Zendesk's circuit breaker trips. Both need
// Config.WebhookID; the zero value means the defaults.
type InvocationsConfig struct {
	// Disabled turns the recovery from invocations off: the ticket events
	// export alone backfills. The early warning stays on.
	Disabled bool
	// PageSize is page[size] of the invocations listing (1–100). Default 100.
	PageSize int
	// ListPages is how many pages of a window's invocations (successes
	// included) are read before listing only the failed ones, status by
	// status (filter[status], FailureStatuses): a busy webhook's successes
	// would cost a request per PageSize. Default 10.
	ListPages int
	// MaxPerRun bounds how many non-success invocations one run reads the
	// attempts of (one Zendesk request each, under the account's shared
	// rate limit), the oldest first; the rest of a large outage is left to
	// the ticket events export of the same run, which covers the same
	// window at 1,000 events a request. Default 200; no setting.
	MaxPerRun int

	// BreakerWindow is the look-back of the failure ratio: Zendesk's breaker
	// looks at 5 minutes. Default 5m.
	BreakerWindow time.Duration
	// BreakerWarnRatio is the share of failed requests in BreakerWindow at
	// which the guardian warns, before Zendesk's 70 %. Default 0.5; no
	// setting.
	BreakerWarnRatio float64
	// BreakerWarnRequests is the number of requests in BreakerWindow below
	// which the ratio does not warn, before Zendesk's 100. Default 50; no
	// setting.
	BreakerWarnRequests int
	// BreakerWarnErrors is the number of failed requests in BreakerWindow
	// at which the guardian warns whatever the ratio, before Zendesk's
	// 1,000. Default 500; no setting.
	BreakerWarnErrors int
	// BreakerMaxPages bounds the invocation pages read for the ratio (the
	// most recent first). Default 20.
	BreakerMaxPages int
}

func (c InvocationsConfig) withDefaults() InvocationsConfig {
	c.PageSize = cmp.Or(c.PageSize, DefaultInvocationsPageSize)
	c.MaxPerRun = cmp.Or(c.MaxPerRun, DefaultInvocationsMaxPerRun)
	c.ListPages = cmp.Or(c.ListPages, DefaultInvocationsListPages)
	c.BreakerWindow = cmp.Or(c.BreakerWindow, DefaultBreakerWindow)
	c.BreakerWarnRatio = cmp.Or(c.BreakerWarnRatio, DefaultBreakerWarnRatio)
	c.BreakerWarnRequests = cmp.Or(c.BreakerWarnRequests, DefaultBreakerWarnRequests)
	c.BreakerWarnErrors = cmp.Or(c.BreakerWarnErrors, DefaultBreakerWarnErrors)
	c.BreakerMaxPages = cmp.Or(c.BreakerMaxPages, DefaultBreakerMaxPages)
	return c
}

func (c InvocationsConfig) validate() error {
	switch {
	case c.PageSize < 1 || c.PageSize > 100:
		return errors.New("reconcile: Invocations.PageSize: between 1 and 100 (Zendesk's page[size])")
	case c.MaxPerRun < 1:
		return errors.New("reconcile: Invocations.MaxPerRun: at least 1")
	case c.ListPages < 1:
		return errors.New("reconcile: Invocations.ListPages: at least 1")
	case c.BreakerWindow < time.Second || c.BreakerWindow > InvocationRetention:
		return errors.New("reconcile: Invocations.BreakerWindow: between 1s and 7 days")
	case c.BreakerWarnRatio <= 0 || c.BreakerWarnRatio > 1:
		return errors.New("reconcile: Invocations.BreakerWarnRatio: above 0 and at most 1 (Zendesk's breaker trips at 0.7)")
	case c.BreakerWarnRequests < 1:
		return errors.New("reconcile: Invocations.BreakerWarnRequests: at least 1 (Zendesk's breaker needs 100)")
	case c.BreakerWarnErrors < 1:
		return errors.New("reconcile: Invocations.BreakerWarnErrors: at least 1 (Zendesk's breaker trips over 1000)")
	case c.BreakerMaxPages < 1:
		return errors.New("reconcile: Invocations.BreakerMaxPages: at least 1")
	}
	return nil
}
