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
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/textx"
	"github.com/deskrelay/deskrelay/internal/tickets"
	"github.com/deskrelay/deskrelay/internal/validate"
	"github.com/deskrelay/deskrelay/zendesk"
)

// TypeMessage is the asynq task type of one outbound message; its payload
// names the message (the message itself lives in deskrelay's record).
const TypeMessage = "outbound:message"

type taskPayload struct {
	ID  string `json:"id"`
	Gen int64  `json:"gen,omitempty"`
	// Account names the message's Zendesk account; "" is "default" (the
	// previous release's tasks carry none).
	Account string `json:"account,omitempty"`
}

// accountPayload is the payload of the relay's own tasks (gate probe,
// release, credentials probe): the account, nothing for "default".
type accountPayload struct {
	Account string `json:"account,omitempty"`
}

// taskID is the asynq task id of a message's delivery (doc.go): msg{<id>},
// and replay{<id>}{<gen>} for a replay's generation, in the account
// "default"; msg{<account>}{<id>} and replay{<account>}{<id>}{<gen>} in any
// other. Message ids and account names hold no braces, so no message id
// can produce another message's (or account's) task id.
func (r *Relay) taskID(id string, gen int64) string {
	acct := ""
	if r.space.Account() != keys.DefaultAccount {
		acct = "{" + r.space.Account() + "}"
	}
	if gen == 0 {
		return "msg" + acct + "{" + id + "}"
	}
	return "replay" + acct + "{" + id + "}{" + strconv.FormatInt(gen, 10) + "}"
}

// ownTaskID is the task id of one of the relay's own tasks (base: the
// account "default"'s, as before accounts existed; other accounts add
// {<account>}).
func (r *Relay) ownTaskID(base string) string {
	if r.space.Account() == keys.DefaultAccount {
		return base
	}
	return base + "{" + r.space.Account() + "}"
}

// ownPayload is the payload of the relay's own tasks: nil for "default",
// as before accounts existed.
func (r *Relay) ownPayload() []byte {
	if r.space.Account() == keys.DefaultAccount {
		return nil
	}
	b, _ := json.Marshal(accountPayload{Account: r.space.Account()})
	return b
}

// legacyTaskID is the task id the previous release gave (msg:<id>,
// msg:<id>:r<gen>); its tasks still run (the payload names the message),
// and are removed like the others when a replay or a chain supersedes them.
// Only the account "default" has them.
func legacyTaskID(id string, gen int64) string {
	if gen == 0 {
		return "msg:" + id
	}
	return "msg:" + id + ":r" + strconv.FormatInt(gen, 10)
}

// taskIDs are the ids a message generation's task may have.
func (r *Relay) taskIDs(id string, gen int64) []string {
	if r.space.Account() != keys.DefaultAccount {
		return []string{r.taskID(id, gen)}
	}
	return []string{r.taskID(id, gen), legacyTaskID(id, gen)}
}

// deleteTask removes a message generation's task, whichever release
// enqueued it; it reports the first error other than "not found".
func (r *Relay) deleteTask(id string, gen int64) error {
	var first error
	for _, tid := range r.taskIDs(id, gen) {
		if err := r.insp.DeleteTask(queues.Outbound, tid); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && first == nil {
			first = err
		}
	}
	return first
}

// dropDoneTask removes the task of a message generation delivered by
// another run (a chain, a probe), which would only find it delivered: the
// task with the current id; the previous release's id only when there is
// none, since a message of this release has no such task (a leftover one
// is harmless, as is any task of a delivered message). Best effort: a
// running task stays.
func (r *Relay) dropDoneTask(id string, gen int64) {
	for _, tid := range r.taskIDs(id, gen) {
		if err := r.insp.DeleteTask(queues.Outbound, tid); !errors.Is(err, asynq.ErrTaskNotFound) {
			return
		}
	}
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
	// runnable and runnableAt cache runnableLimit (unix nanos of the read).
	runnable, runnableAt atomic.Int64
	cfg                  Config
	rdb                  redis.UniversalClient
	space                keys.Space
	client               *asynq.Client
	insp                 *asynq.Inspector
	// closers are what Close closes: the client and inspector the relay
	// made itself (shared ones are main's).
	closers []func() error
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

// New returns the Relay of one Zendesk account (Deps.Space). Deps.Redis
// and Deps.Asynq (or Deps.Client and Deps.Inspector) are required;
// Deps.Zendesk is required for delivery (not for intake). A Relay starts no
// goroutine and no timer: 1,000 of them cost their structs.
func New(cfg Config, d Deps) (*Relay, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if d.Redis == nil || (d.Asynq == nil && (d.Client == nil || d.Inspector == nil)) {
		return nil, errors.New("relay: Deps.Redis and Deps.Asynq (or Deps.Client and Deps.Inspector) are required")
	}
	if d.Space == (keys.Space{}) {
		d.Space = keys.Default
	}
	if msg := validate.AccountName(d.Space.Account()); msg != "" {
		return nil, validate.Errorf("relay", "Space", "%s", msg)
	}
	m, err := newMetrics(d.Metrics, d.Space.Account())
	if err != nil {
		return nil, err
	}
	r := &Relay{
		cfg:     cfg,
		rdb:     d.Redis,
		space:   d.Space,
		client:  d.Client,
		insp:    d.Inspector,
		lim:     d.Limiter,
		tickets: tickets.New(d.Redis).WithSpace(d.Space).WithRetention(cfg.Retention),
		st:      store{rdb: d.Redis, space: d.Space, retention: cfg.Retention},
		log:     d.Log.With().Str("queue", queues.Outbound).Str("account", d.Space.Account()).Logger(),
		m:       m,
	}
	if r.client == nil {
		r.client = asynq.NewClient(d.Asynq)
		r.closers = append(r.closers, r.client.Close)
	}
	if r.insp == nil {
		r.insp = asynq.NewInspector(d.Asynq)
		r.closers = append(r.closers, r.insp.Close)
	}
	r.outcomes = d.Outcomes
	if d.Zendesk != nil {
		r.zd = d.Zendesk
	}
	if r.lim == nil {
		r.lim = budget.New(d.Redis, budget.Config{Rate: budget.PerMinute(cfg.RateLimit), Space: d.Space})
	}
	return r, nil
}

// Account is the name of the relay's Zendesk account.
func (r *Relay) Account() string { return r.space.Account() }

// Close closes the asynq client and inspector the relay made itself (not
// shared ones) and removes the account's series from the metrics.
func (r *Relay) Close() error {
	r.m.forget(r.space.Account())
	var errs []error
	for _, c := range r.closers {
		errs = append(errs, c())
	}
	r.closers = nil
	return errors.Join(errs...)
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

// enqueueTask enqueues a message generation's task: pending, or parked
// (scheduled after the park time, which the release cuts short: gate.go)
// when parked is set.
func (r *Relay) enqueueTask(ctx context.Context, id string, gen int64, parked bool) error {
	payload := r.messagePayload(id, gen)
	opts := []asynq.Option{asynq.Queue(queues.Outbound), asynq.TaskID(r.taskID(id, gen)),
		asynq.MaxRetry(queues.MaxRetry), asynq.Timeout(r.cfg.AttemptTimeout)}
	if parked {
		opts = append(opts, asynq.ProcessIn(jitter(r.cfg.GateParkTime)))
	}
	_, err := r.client.EnqueueContext(ctx, asynq.NewTask(TypeMessage, payload), opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil // an earlier, interrupted intake already enqueued it
	}
	return err
}

// messagePayload is the payload of a message generation's task; it names
// the account, except "default" (as the previous release's tasks).
func (r *Relay) messagePayload(id string, gen int64) []byte {
	p := taskPayload{ID: id, Gen: gen}
	if r.space.Account() != keys.DefaultAccount {
		p.Account = r.space.Account()
	}
	b, _ := json.Marshal(p)
	return b
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
		return queues.Wait(jitter(d), errBudgetSpent)
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
