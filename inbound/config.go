package inbound

import (
	"cmp"
	"errors"
	"strings"
	"time"

	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/internal/validate"
)

// Config configures the inbound path's process-wide part: the sink, the
// spool, the limits of the request path; each account's own settings are
// an Account (SetAccounts). Package main fills it from the settings; errors
// are *validate.FieldError naming the field.
type Config struct {
	// SinkURL is the platform's endpoint for ticket events. Required: http
	// or https.
	SinkURL string
	// SinkSecret signs sink deliveries with Standard Webhooks: "whsec_" +
	// base64. Required.
	SinkSecret string
	// SecretRetry is the first wait after a failed read of the signing
	// secret; it doubles up to SecretRetryMax. Defaults 2s and 2 minutes.
	SecretRetry    time.Duration
	SecretRetryMax time.Duration
	// ForwardPrivate also forwards agents' private notes (every account's
	// Publisher the Receiver builds). Default false.
	ForwardPrivate bool
	// SpoolDir is where verified webhook requests wait while Redis is
	// unreachable. Default "./spool". One directory
	// per process: replicas must not share it.
	SpoolDir string
	// NoSpool is for one-shot commands that only replay (deskrelay replay):
	// no spool directory is opened or locked, since a running serve holds
	// it; webhooks it would have to spool are answered 503.
	NoSpool bool
	// SpoolMaxBytes caps the spool's size; beyond it the receiver answers
	// 503. Default 1 GiB.
	SpoolMaxBytes int64
	// LedgerRetention is how long event ids are remembered for dedupe.
	// Default 14 days.
	LedgerRetention time.Duration
	// MaxSkew is how far the signature timestamp may be from now. Default
	// 5 minutes (Zendesk's documented window).
	MaxSkew time.Duration
	// MaxBodyBytes limits a webhook body (413 beyond). Default 1 MiB.
	MaxBodyBytes int64
	// BodyReadTimeout bounds reading one webhook body (Zendesk sends it at
	// once): 408 beyond. Default 5s.
	BodyReadTimeout time.Duration
	// BodyBudgetBytes bounds the memory held by all request bodies being
	// read at once: beyond it a request is answered 503 with Retry-After.
	// Default 32 MiB.
	BodyBudgetBytes int64
	// EnqueueTimeout is how long the webhook answer waits for Redis before
	// it spools the request instead. Default 100ms.
	EnqueueTimeout time.Duration
	// SlowEnqueue is how long one enqueue may take before the requests
	// arriving meanwhile stop waiting for Redis and spool. Default 20ms.
	SlowEnqueue time.Duration
	// SinkTimeout bounds one HTTP request to the sink. Default 10s; must be
	// below TaskTimeout.
	SinkTimeout time.Duration
	// TaskTimeout bounds one delivery task attempt. Default 1 minute.
	TaskTimeout time.Duration
	// OrderSettle is how long a new event waits before delivery, so that
	// events of one conversation that arrive close together (Zendesk does
	// not guarantee order) go out in occurred_at order. Default 1s; a
	// negative value turns it off.
	OrderSettle time.Duration
	// OrderPoll is how long an event waits before it looks again whether
	// its conversation's earlier events are done. Default 1s.
	OrderPoll time.Duration
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

// Defaults.
const (
	DefaultSpoolDir      = "./spool"
	DefaultSpoolMaxBytes = 1 << 30
	DefaultMaxSkew       = 5 * time.Minute
	DefaultMaxBodyBytes  = 1 << 20
	// DefaultBodyBudgetBytes bounds the memory of request bodies in flight.
	DefaultBodyBudgetBytes = 32 << 20
)

func (c Config) withDefaults() Config {
	c.SpoolDir = cmp.Or(c.SpoolDir, DefaultSpoolDir)
	if c.SpoolMaxBytes <= 0 {
		c.SpoolMaxBytes = DefaultSpoolMaxBytes
	}
	if c.SecretRetry <= 0 {
		c.SecretRetry = 2 * time.Second
	}
	if c.SecretRetryMax <= 0 {
		c.SecretRetryMax = 2 * time.Minute
	}
	c.SecretRetryMax = max(c.SecretRetryMax, c.SecretRetry)
	if c.LedgerRetention <= 0 {
		c.LedgerRetention = sink.DefaultLedgerRetention
	}
	if c.MaxSkew <= 0 {
		c.MaxSkew = DefaultMaxSkew
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.BodyReadTimeout <= 0 {
		c.BodyReadTimeout = 5 * time.Second
	}
	if c.BodyBudgetBytes <= 0 {
		c.BodyBudgetBytes = DefaultBodyBudgetBytes
	}
	if c.EnqueueTimeout <= 0 {
		c.EnqueueTimeout = 100 * time.Millisecond
	}
	if c.SlowEnqueue <= 0 {
		c.SlowEnqueue = 20 * time.Millisecond
	}
	if c.SlowEnqueue > c.EnqueueTimeout {
		c.SlowEnqueue = c.EnqueueTimeout
	}
	if c.SinkTimeout <= 0 {
		c.SinkTimeout = 10 * time.Second
	}
	if c.TaskTimeout <= 0 {
		c.TaskTimeout = time.Minute
	}
	c.OrderSettle = cmp.Or(c.OrderSettle, time.Second)
	if c.OrderSettle < 0 {
		c.OrderSettle = 0
	}
	if c.OrderPoll <= 0 {
		c.OrderPoll = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks c (after its defaults), reporting each bad field as a
// *validate.FieldError.
func (c Config) Validate() error { return c.withDefaults().validate() }

func (c Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, validate.Errorf("inbound", field, format, args...))
	}
	if c.SinkURL == "" {
		bad("SinkURL", "required")
	} else if problem := validate.HTTPURL(c.SinkURL); problem != "" {
		bad("SinkURL", "%s", problem)
	}
	switch {
	case c.SinkSecret == "":
		bad("SinkSecret", "required (whsec_ followed by base64)")
	case !strings.HasPrefix(c.SinkSecret, "whsec_"):
		bad("SinkSecret", "must start with whsec_ (a Standard Webhooks secret)")
	default:
		if err := sink.CheckSecret(c.SinkSecret); err != nil {
			bad("SinkSecret", "the part after whsec_ is not base64")
		}
	}
	if c.SinkTimeout >= c.TaskTimeout {
		bad("SinkTimeout", "%s must be below TaskTimeout %s", c.SinkTimeout, c.TaskTimeout)
	}
	return errors.Join(errs...)
}
