package reconcile

import (
	"context"
	"errors"
	"time"

	zdbudget "github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/sink"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/tickets"
	"github.com/deskrelay/deskrelay/internal/validate"
	"github.com/deskrelay/deskrelay/zendesk"
)

// Reconciler reads Zendesk's incremental ticket events and publishes what
// the webhook path did not deliver. Safe for concurrent use; scheduled runs
// are serialised by a lease in Redis.
type Reconciler struct {
	cfg      Config
	space    keys.Space // the account's keys: lease, checkpoints, guardian, last run
	log      zerolog.Logger
	rdb      redis.UniversalClient
	zd       Zendesk
	pub      Publisher
	tickets  Tickets
	limiter  Limiter
	receiver Receiver
	m        *metrics
	users    *events.AuthorCache
	client   *asynq.Client
	ownsAsq  bool // client was made here: Close closes it
	guardian *Guardian
	im       *invMetrics
}

// New returns a Reconciler, or an error naming the bad setting.
func New(cfg Config, deps Deps) (*Reconciler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := deps.validate(); err != nil {
		return nil, err
	}
	space := deps.space()
	r := &Reconciler{
		cfg:      cfg,
		space:    space,
		rdb:      deps.Redis,
		zd:       deps.Zendesk,
		pub:      deps.Publisher,
		tickets:  deps.Tickets,
		limiter:  deps.Limiter,
		receiver: deps.Receiver,
		log:      deps.Log.With().Str("component", "reconcile").Str("account", space.Account()).Logger(),
		users:    events.NewAuthorCache(0, maxCachedUsers, nil),
		client:   deps.Asynq,
	}
	if r.client == nil {
		r.client, r.ownsAsq = asynq.NewClientFromRedisClient(deps.Redis), true
	}
	if r.tickets == nil {
		r.tickets = tickets.New(deps.Redis).WithSpace(space)
	}
	if r.receiver == nil {
		r.receiver = redisReceiver{rdb: deps.Redis, space: space}
	}
	m, err := newMetrics(deps.Metrics, r)
	if err != nil {
		return nil, err
	}
	r.m = m
	if r.im, err = newInvMetrics(deps.Metrics, space.Account()); err != nil {
		return nil, err
	}
	r.guardian = &Guardian{r: r}
	return r, nil
}

// Close releases the asynq client it made (not Deps.Asynq, not the Redis
// client) and drops the account from the shared checkpoint-age metric.
func (r *Reconciler) Close() error {
	r.m.forget(r)
	if !r.ownsAsq {
		return nil
	}
	return r.client.Close()
}

// Account is the name of the Zendesk account the Reconciler serves
// (Deps.Space).
func (r *Reconciler) Account() string { return r.space.Account() }

// Guardian returns the webhook guardian (`deskrelay webhook status|enable`).
func (r *Reconciler) Guardian() *Guardian { return r.guardian }

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

// Invocations is the part of *zendesk.Client the recovery from invocations
// uses: the invocations listing, an invocation's attempts with their
// payloads, and a ticket's comments (a trigger body names its comment only).
type Invocations interface {
	ListInvocations(ctx context.Context, webhookID string, f zendesk.InvocationFilter) (*zendesk.InvocationsPage, error)
	InvocationAttempts(ctx context.Context, webhookID, invocationID string) ([]zendesk.Attempt, error)
	ListComments(ctx context.Context, ticketID int64) ([]zendesk.Comment, error)
}

// Publisher is the part of *sink.Publisher the reconciler uses: the same
// rules, ledger and delivery tasks as the webhook path.
type Publisher interface {
	Publish(ctx context.Context, ev events.Event) (events.Outcome, error)
	Check(ctx context.Context, ev events.Event) (events.Outcome, error)
	Ledger() *sink.Ledger
	// ResolveComment reads the comment a recovered trigger body names
	// (invocations.go), as the webhook worker does.
	ResolveComment(ctx context.Context, pl *events.Payload, zd events.CommentReader, src events.Source, fallback time.Time) (*events.Event, string, error)
}

// Tickets is the part of *tickets.Tickets the reconciler reads (which tickets
// deskrelay manages, which comments it wrote) before asking Zendesk who
// wrote a comment.
type Tickets interface {
	ConversationOf(ctx context.Context, ticketID int64) (string, bool, error)
	IsOwnComment(ctx context.Context, commentID int64) (bool, error)
}

// Limiter is the account-wide Zendesk budget shared by every replica
// (*budget.Limiter).
type Limiter = zdbudget.Account

// Receiver reports the health of deskrelay's own webhook receiver (inbound
// implements it); it may also be a SecretRefresher. When Deps.Receiver is
// nil the reconciler reads the same keys inbound writes, in the account's
// key space (Space.WebhookLastReceived, Space.WebhookSignatureFailures).
type Receiver interface {
	// LastReceived is when a verified webhook event last arrived; zero when
	// none is recorded.
	LastReceived(ctx context.Context) (time.Time, error)
	// SignatureFailures is the length of the current run of webhook
	// signature failures (0 after a good signature): shown in the
	// guardian's state, never a reason to refuse anything, since anyone
	// can send a request with a bad signature.
	SignatureFailures(ctx context.Context) (int, error)
}

// SecretRefresher is implemented by a Receiver that can read the webhook's
// signing secret from Zendesk again (inbound's Receiver.RefreshSecret).
// The guardian calls it, at most once a minute, when Zendesk's record shows
// calls deskrelay answered 401 (evidence.go). Nil means the receiver now
// verifies with the secret Zendesk signs with: the 401s before the call no
// longer count. An error (Zendesk unreachable, or a configured
// DESKRELAY_WEBHOOK_SECRET that differs from Zendesk's) leaves them
// standing.
type SecretRefresher interface {
	RefreshSecret(ctx context.Context) error
}

// Deps are the Reconciler's collaborators: one Reconciler per Zendesk
// account, each with that account's Space, Zendesk client, Publisher,
// Tickets, Limiter and Receiver; Redis, Asynq and Metrics may be shared.
type Deps struct {
	// Space is the account's key space: its lease, checkpoints, rewind,
	// export limiter, guardian state and last run. The zero Space means
	// keys.Default (the account "default").
	Space keys.Space
	// Redis holds the checkpoint, the lease and the export limiter, and is
	// asynq's Redis (required). Not closed by the Reconciler.
	Redis redis.UniversalClient
	// Asynq enqueues the scheduled runs and breaker checks; shared by the
	// accounts' Reconcilers and not closed by them. Nil: the Reconciler
	// makes its own on Redis and closes it in Close.
	Asynq *asynq.Client
	// Zendesk is the account's API client (required).
	Zendesk Zendesk
	// Publisher makes events durable sink deliveries of the account
	// (required).
	Publisher Publisher
	// Tickets is the account's ticket record; default
	// tickets.New(Redis).WithSpace(Space).
	Tickets Tickets
	// Limiter is the shared account limiter; nil means none.
	Limiter Limiter
	// Receiver reports the webhook receiver's health; nil reads its keys.
	// When it is a SecretRefresher the guardian has it read the signing
	// secret again on Zendesk's evidence of a wrong one.
	Receiver Receiver
	// Log receives the reconciler's logs.
	Log zerolog.Logger
	// Metrics registers the reconciler's metrics; nil means none.
	Metrics prometheus.Registerer
}

// space is d.Space, keys.Default when it is the zero Space.
func (d Deps) space() keys.Space {
	if d.Space.Account() == "" {
		return keys.Default
	}
	return d.Space
}

func (d Deps) validate() error {
	if problem := validate.AccountName(d.space().Account()); problem != "" {
		return errors.New("reconcile: Deps.Space: " + problem)
	}
	switch {
	case d.Redis == nil:
		return errors.New("reconcile: Deps.Redis is required")
	case d.Zendesk == nil:
		return errors.New("reconcile: Deps.Zendesk is required")
	case d.Publisher == nil:
		return errors.New("reconcile: Deps.Publisher is required")
	}
	return nil
}
