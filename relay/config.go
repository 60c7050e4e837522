package relay

import (
	"cmp"
	"io"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/validate"
	"github.com/deskrelay/deskrelay/zendesk"
)

// Config configures the outbound relay. Zero values take the defaults below.
type Config struct {
	// OrderGapTimeout is how long a conversation waits for a missing
	// sequence number before it goes on
	// Default 5m.
	OrderGapTimeout time.Duration
	// RateLimit is the Zendesk requests per minute deskrelay may use
	// Default 200. Only used to describe the
	// limiter in Report; the limiter itself is Deps.Limiter.
	RateLimit int
	// Retention is how long deskrelay remembers a conversation, ticket or
	// user mapping after its last activity, and a delivered message's record
	// (and so its id's idempotency) (DESKRELAY_RETENTION). Default 720h.
	// Failed messages are kept until replayed or discarded.
	Retention time.Duration
	// AttemptTimeout bounds one delivery attempt (asynq.Timeout, never a
	// Deadline). Default 2m; it must be well above the Zendesk HTTP timeout.
	AttemptTimeout time.Duration
	// TurnPoll is how long a message whose turn has not come waits before it
	// looks again; it is usually woken earlier by its predecessor.
	// Default 5s.
	TurnPoll time.Duration
	// GateThreshold is how many temporary Zendesk failures in a row close the
	// outage gate. Default 5.
	GateThreshold int
	// GateProbeInterval is how often, while the gate is closed, one task
	// probes Zendesk (one GET /api/v2/users/me per interval and account).
	// Default 1s, so that the first message after Zendesk recovers is
	// delivered within 2s.
	GateProbeInterval time.Duration
	// GateParkTime is the safety-net timer of a parked task (closed gate,
	// spent budget, backlog): the release wakes it (gate.go); the timer
	// only fires when no release came. Default 10m.
	GateParkTime time.Duration
	// UpdateRateLimit, when set, is a fixed number of Update Ticket
	// requests a minute. Zero: the Limiter's share of the limit Zendesk
	// reports (DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT, budget.Config.UpdateRate).
	UpdateRateLimit int
	// TicketUpdateLimit is Zendesk's per-ticket update budget: updates per
	// TicketUpdateWindow. Defaults 30 per 10m (docs/zendesk.md).
	TicketUpdateLimit  int
	TicketUpdateWindow time.Duration
	// LockTTL is the lifetime of a conversation lock; it is renewed while
	// the holder works, so a killed worker frees it within LockTTL.
	// Default 10s.
	LockTTL time.Duration
	// AutoReplay replays the messages failed as unauthorized once the
	// credentials work again Default false.
	AutoReplay bool
	// CredentialProbeInterval is how often, after a 401/403, one task asks
	// Zendesk whether the credentials work again. Default 30s.
	CredentialProbeInterval time.Duration
	// AmbiguousSettle is how long after a write that got no answer at all
	// (timeout, cut connection) the relay waits before it checks Zendesk
	// for it, so that a request Zendesk is still working on is not sent
	// twice. Default 10s.
	AmbiguousSettle time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	c.OrderGapTimeout = cmp.Or(c.OrderGapTimeout, 5*time.Minute)
	c.RateLimit = cmp.Or(c.RateLimit, 200)
	c.Retention = cmp.Or(c.Retention, 30*24*time.Hour)
	c.AttemptTimeout = cmp.Or(c.AttemptTimeout, 2*time.Minute)
	c.TurnPoll = cmp.Or(c.TurnPoll, 5*time.Second)
	c.GateThreshold = cmp.Or(c.GateThreshold, 5)
	c.GateProbeInterval = cmp.Or(c.GateProbeInterval, time.Second)
	c.GateParkTime = cmp.Or(c.GateParkTime, 10*time.Minute)
	c.TicketUpdateLimit = cmp.Or(c.TicketUpdateLimit, 30)
	c.TicketUpdateWindow = cmp.Or(c.TicketUpdateWindow, 10*time.Minute)
	c.LockTTL = cmp.Or(c.LockTTL, 10*time.Second)
	c.CredentialProbeInterval = cmp.Or(c.CredentialProbeInterval, 30*time.Second)
	c.AmbiguousSettle = cmp.Or(c.AmbiguousSettle, 10*time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks c (after its defaults), reporting each bad field as a
// *validate.FieldError.
func (c Config) Validate() error { return c.withDefaults().validate() }

func (c Config) validate() error {
	bad := func(field, format string, args ...any) error { return validate.Errorf("relay", field, format, args...) }
	switch {
	case c.OrderGapTimeout < 0:
		return bad("OrderGapTimeout", "must not be negative, got %s", c.OrderGapTimeout)
	case c.RateLimit < 1:
		return bad("RateLimit", "must be at least 1 per minute, got %d", c.RateLimit)
	case c.Retention < time.Hour:
		return bad("Retention", "must be at least 1h, got %s", c.Retention)
	case c.AttemptTimeout < 5*time.Second:
		return bad("AttemptTimeout", "must be at least 5s, got %s", c.AttemptTimeout)
	case c.TurnPoll <= 0 || c.GateProbeInterval <= 0 || c.GateParkTime <= 0 || c.CredentialProbeInterval <= 0:
		return bad("TurnPoll", "TurnPoll, GateProbeInterval, GateParkTime and CredentialProbeInterval must be positive")
	case c.LockTTL < time.Second:
		return bad("LockTTL", "must be at least 1s, got %s", c.LockTTL)
	case c.AmbiguousSettle < 0:
		return bad("AmbiguousSettle", "must not be negative, got %s", c.AmbiguousSettle)
	case c.GateThreshold < 1:
		return bad("GateThreshold", "must be at least 1, got %d", c.GateThreshold)
	case c.TicketUpdateLimit < 1 || c.TicketUpdateWindow <= 0 || c.UpdateRateLimit < 0:
		return bad("TicketUpdateLimit", "TicketUpdateLimit and TicketUpdateWindow must be positive, UpdateRateLimit not negative")
	}
	return nil
}

// Deps are the relay's collaborators, built by package main.
type Deps struct {
	// Redis holds deskrelay's own keys (the same Redis as Asynq).
	Redis redis.UniversalClient
	// Asynq connects the asynq client and inspector the relay makes when
	// Client or Inspector is nil.
	Asynq asynq.RedisConnOpt
	// Space is the key space of the relay's Zendesk account; zero:
	// keys.Default.
	Space keys.Space
	// Client and Inspector, when set, are shared with other components
	// (one per process); Close leaves them open. Nil: the relay makes its
	// own from Asynq and Close closes them.
	Client    *asynq.Client
	Inspector *asynq.Inspector
	// Zendesk is the Zendesk client; its Config.OnResponse should be
	// Limiter.Observe. Required for delivery; intake works without it.
	Zendesk *zendesk.Client
	// Limiter is the account's shared Zendesk rate limiter (budget.New with
	// the account's Space). Default: the account "default"'s
	// budget.NewLimiter(Redis, Config.RateLimit).
	Limiter *budget.Limiter
	// Log receives the relay's logs.
	Log zerolog.Logger
	// Metrics registers the relay's Prometheus collectors; nil: no metrics.
	Metrics prometheus.Registerer
	// Outcomes is told each message's outcome (*sink.Outcomes); nil: no
	// outcome events (no sink).
	Outcomes OutcomeSink
}

// ReplayOptions selects the failed messages `deskrelay replay` puts back.
type ReplayOptions struct {
	// Reason is "unauthorized", "invalid", or "" for every reason.
	Reason string
	// Since keeps messages failed at or after this time; zero: all.
	Since time.Time
	// DryRun lists what would be replayed without changing anything.
	DryRun bool
	// Out receives one line per message; nil: io.Discard.
	Out io.Writer
}
