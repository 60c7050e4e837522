package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/textx"
	"github.com/deskrelay/deskrelay/internal/tickets"
	"github.com/deskrelay/deskrelay/zendesk"
)

// TypeMessage is the asynq task type of one outbound message; its payload
// names the message (the message itself lives in deskrelay's record).
const TypeMessage = "outbound:message"

type taskPayload struct {
	ID  string `json:"id"`
	Gen int64  `json:"gen,omitempty"`
}

// taskID is the asynq task id of a message's delivery: msg{<id>}, and
// replay{<id>}{<gen>} for a replay's generation. Message ids hold no braces
// (intake refuses them), so no message id can produce another message's
// task id.
func taskID(id string, gen int64) string {
	if gen == 0 {
		return "msg{" + id + "}"
	}
	return "replay{" + id + "}{" + strconv.FormatInt(gen, 10) + "}"
}

// legacyTaskID is the task id the previous release gave (msg:<id>,
// msg:<id>:r<gen>); its tasks still run (the payload names the message),
// and are removed like the others when a replay or a chain supersedes them.
func legacyTaskID(id string, gen int64) string {
	if gen == 0 {
		return "msg:" + id
	}
	return "msg:" + id + ":r" + strconv.FormatInt(gen, 10)
}

// deleteTask removes a message generation's task, whichever release
// enqueued it; it reports the first error other than "not found".
func (r *Relay) deleteTask(id string, gen int64) error {
	var first error
	for _, tid := range []string{taskID(id, gen), legacyTaskID(id, gen)} {
		if err := r.insp.DeleteTask(queues.Outbound, tid); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && first == nil {
			first = err
		}
	}
	return first
}

// zendeskAPI is what the relay needs of Zendesk (*zendesk.Client).
type zendeskAPI interface {
	CreateTicket(ctx context.Context, t zendesk.NewTicket, idempotencyKey string) (*zendesk.TicketWrite, error)
	UpdateTicket(ctx context.Context, id int64, u zendesk.TicketUpdate) (*zendesk.TicketWrite, error)
	GetTicket(ctx context.Context, id int64) (*zendesk.Ticket, error)
	TicketsByExternalID(ctx context.Context, externalID string) ([]zendesk.Ticket, error)
	ListAudits(ctx context.Context, ticketID int64) ([]zendesk.Audit, error)
	Me(ctx context.Context) (*zendesk.User, error)
	CreateOrUpdateUser(ctx context.Context, u zendesk.UserInput) (*zendesk.User, error)
	Scrub(s string) string
}

// Relay is the outbound relay. Safe for concurrent use; several processes
// may run one each on the same Redis.
type Relay struct {
	cfg     Config
	rdb     redis.UniversalClient
	client  *asynq.Client
	insp    *asynq.Inspector
	zd      zendeskAPI
	lim     *budget.Limiter
	tickets *tickets.Tickets
	st      store
	log     zerolog.Logger
	m       *metrics
	// outcomes is Deps.Outcomes (outcome.go).
	outcomes OutcomeSink

	// testHookParking, set by tests only, runs as a task is about to park
	// at the closed outage gate: the last moment before asynq moves it to
	// the retry set.
	testHookParking func(context.Context)
}

// New returns a Relay. Deps.Redis and Deps.Asynq are required;
// Deps.Zendesk is required for delivery (not for intake).
func New(cfg Config, d Deps) (*Relay, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if d.Redis == nil || d.Asynq == nil {
		return nil, errors.New("relay: Deps.Redis and Deps.Asynq are required")
	}
	m, err := newMetrics(d.Metrics)
	if err != nil {
		return nil, err
	}
	r := &Relay{
		cfg:     cfg,
		rdb:     d.Redis,
		client:  asynq.NewClient(d.Asynq),
		insp:    asynq.NewInspector(d.Asynq),
		lim:     d.Limiter,
		tickets: tickets.New(d.Redis).WithRetention(cfg.Retention),
		st:      store{rdb: d.Redis, retention: cfg.Retention},
		log:     d.Log.With().Str("queue", queues.Outbound).Logger(),
		m:       m,
	}
	r.outcomes = d.Outcomes
	if d.Zendesk != nil {
		r.zd = d.Zendesk
	}
	if r.lim == nil {
		r.lim = budget.NewLimiter(d.Redis, cfg.RateLimit)
	}
	return r, nil
}

// Close releases the relay's asynq client and inspector.
func (r *Relay) Close() error {
	return errors.Join(r.client.Close(), r.insp.Close())
}

// Register adds the outbound task handlers to mux.
func (r *Relay) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeMessage, r.processMessage)
	mux.HandleFunc(TypeGateProbe, r.processProbe)
	mux.HandleFunc(TypeGateRelease, r.processRelease)
	mux.HandleFunc(TypeCredentialProbe, r.processCredentialProbe)
}

// Tickets returns deskrelay's ticket record.
func (r *Relay) Tickets() *tickets.Tickets { return r.tickets }

var errNoZendesk = errors.New("relay: no Zendesk client configured")

func (r *Relay) enqueueTask(ctx context.Context, id string, gen int64) error {
	payload, _ := json.Marshal(taskPayload{ID: id, Gen: gen})
	_, err := r.client.EnqueueContext(ctx, asynq.NewTask(TypeMessage, payload),
		asynq.Queue(queues.Outbound), asynq.TaskID(taskID(id, gen)),
		asynq.MaxRetry(queues.MaxRetry), asynq.Timeout(r.cfg.AttemptTimeout))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil // an earlier, interrupted intake already enqueued it
	}
	return err
}

// Error kinds, as the relay acts on them.
type kind int

const (
	kindOK kind = iota
	kindTemporary
	kindRateLimited
	kindUnauthorized
	kindNotFound
	kindClosed // a closed ticket, or one at its maximum of comments: a new ticket takes over
	kindInvalid
	kindWait  // a queues.Wait (budget, gate)
	kindOther // not Zendesk's answer: Redis, context, programming errors
)

func kindOf(err error) kind {
	if err == nil {
		return kindOK
	}
	if queues.IsWait(err) {
		return kindWait
	}
	ze := zendesk.AsError(err)
	if ze == nil {
		return kindOther
	}
	switch ze.Kind {
	case zendesk.KindTemporary:
		return kindTemporary
	case zendesk.KindRateLimited:
		return kindRateLimited
	case zendesk.KindUnauthorized:
		return kindUnauthorized
	case zendesk.KindNotFound:
		return kindNotFound
	case zendesk.KindUnprocessable:
		if ze.Closed() || ze.CommentLimit() {
			return kindClosed
		}
		return kindInvalid
	case zendesk.KindInvalid:
		return kindInvalid
	}
	return kindOther
}

// limitWait is how long an outbound task waits inline for the shared
// budget: a refill of up to a second, up to two seconds in all; longer, it
// answers queues.Wait (the task comes back later, no attempt counted).
var limitWait = budget.Options{MaxWait: time.Second, Within: 2 * time.Second}

// limit takes one request from the shared budget (see limitWait).
func (r *Relay) limit(ctx context.Context) error {
	return r.spent(budget.Take(ctx, r.lim, limitWait))
}

// spent turns a spent budget into a queues.Wait.
func (r *Relay) spent(err error) error {
	if d, ok := budget.Spent(err); ok {
		r.m.rateLimitWaits.Inc()
		return queues.Wait(jitter(d), errors.New("zendesk rate limit"))
	}
	return err
}

// observe feeds one Zendesk call's outcome to metrics and the outage gate.
// Only Zendesk-wide symptoms count toward closing the gate (outage below);
// an error of one request (a 4xx, a request that cannot be sent) never does.
func (r *Relay) observe(op string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ze := zendesk.AsError(err)
	switch k := kindOf(err); {
	case k == kindOK:
		r.m.zendeskStatus.WithLabelValues(op, "2xx").Inc()
		r.gateSuccess(ctx)
	case k == kindWait || k == kindOther:
	case k == kindRateLimited:
		// budget.Call / budget.Pause429 paused the account
		r.m.zendeskStatus.WithLabelValues(op, statusLabel(err)).Inc()
	case outage(ze):
		r.m.zendeskStatus.WithLabelValues(op, statusLabel(err)).Inc()
		if !errors.Is(err, context.Canceled) { // shutting down is no outage
			r.gateFailure(ctx)
		}
	case ze.Status == 0:
		// Not sent at all (e.g. a header net/http refuses): Zendesk said nothing.
		r.m.zendeskStatus.WithLabelValues(op, statusLabel(err)).Inc()
	default:
		// Zendesk answered (a 4xx, a 409 conflict): it is up.
		r.m.zendeskStatus.WithLabelValues(op, statusLabel(err)).Inc()
		r.gateSuccess(ctx)
	}
}

// outage reports a Zendesk-wide symptom, the only errors that may close
// the outage gate: no connection or no answer in time (status 0), 5xx,
// 408, and 423 (Zendesk's maintenance).
func outage(ze *zendesk.Error) bool {
	if ze == nil || ze.Kind != zendesk.KindTemporary {
		return false
	}
	s := ze.Status
	return s == 0 || s >= 500 || s == http.StatusRequestTimeout || s == http.StatusLocked
}

func statusLabel(err error) string {
	if ze := zendesk.AsError(err); ze != nil {
		if ze.Status == 0 {
			return "transport"
		}
		return strconv.Itoa(ze.Status)
	}
	return "error"
}

func randInt64N(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return rand.Int64N(n)
}

// lastError is err as stored with a message: at most 1000 bytes (and a
// mark), never a character cut in two.
func lastError(err error) string {
	return textx.Truncate(strings.TrimSpace(err.Error()), 1000)
}

// errorText is err as stored with a message (last_error, shown by GET
// /v1/messages/{id} and replay): lastError with Zendesk's credentials
// scrubbed first, whatever the error's origin (zendesk scrubs its own
// errors; this is the second line).
func (r *Relay) errorText(err error) string {
	if r.zd == nil {
		return lastError(err)
	}
	return lastError(errors.New(r.zd.Scrub(err.Error())))
}

// zdCall runs one Zendesk call within the shared budget and observes its
// outcome.
func zdCall[T any](ctx context.Context, r *Relay, op string, f func(context.Context) (T, error)) (T, error) {
	var zero T
	if r.zd == nil {
		return zero, errNoZendesk
	}
	if err := r.limit(ctx); err != nil {
		return zero, err
	}
	v, err := f(ctx)
	budget.Pause429(ctx, r.lim, err)
	r.observe(op, err)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", op, err)
	}
	return v, nil
}
