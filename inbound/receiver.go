package inbound

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/httpx"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/internal/tickets"
	"github.com/deskrelay/deskrelay/internal/validate"
)

// TaskWebhook is the asynq task type of a received, verified webhook body
// (payload: received), turned into events by its handler.
const TaskWebhook = "inbound:webhook"

// HeaderInvocationID is the header Zendesk sends with every webhook call;
// retries of one invocation share it.
const HeaderInvocationID = "X-Zendesk-Webhook-Invocation-Id"

// Deps are the Receiver's collaborators shared by every account; each
// account's own (its Zendesk client, budget, secret reader) are in its
// Account.
type Deps struct {
	// Redis is deskrelay's Redis (asynq shares it). Required.
	Redis redis.UniversalClient
	// Tickets is the record of managed tickets and own comments, in any
	// account's space: each account reads it with its own
	// (tickets.WithSpace). Default tickets.New(Redis).
	Tickets *tickets.Tickets
	// Asynq and Inspector, when set, are shared with other components and
	// not closed; nil: the Receiver makes its own on Redis.
	Asynq     *asynq.Client
	Inspector *asynq.Inspector
	// Log is the logger (main gives it component=inbound); each account's
	// lines carry account=<name>.
	Log zerolog.Logger
	// Metrics registers the inbound metrics; nil registers nothing.
	Metrics prometheus.Registerer
	// SinkClient replaces the HTTP client for sink deliveries (tests); its
	// Timeout is set to Config.SinkTimeout when zero.
	SinkClient *http.Client
}

// RateLimiter is the shared Zendesk request budget (*budget.Limiter).
type RateLimiter = budget.Account

// Receiver is the inbound path: the webhook endpoints of every account, the
// spool and its mover, the task handlers. It is the one process-wide part
// (one spool directory, one body budget, one sink client and Deliverer);
// each account (SetAccounts) adds only its settings, its Publisher and a
// little state, and no goroutine unless it reads its signing secret.
type Receiver struct {
	cfg      Config
	rdb      redis.UniversalClient
	client   *asynq.Client
	insp     *asynq.Inspector
	tickets  *tickets.Tickets
	log      zerolog.Logger
	m        *metrics
	spool    *spool
	deliver  *sink.Deliverer
	stuck    stuckState
	budget   *bodyBudget
	accounts atomic.Pointer[map[string]*account] // replaced whole by SetAccounts, never changed

	// setMu serializes SetAccounts and Run's start and end; it guards
	// runCtx, the accounts' stopReader and readers' Add.
	setMu   sync.Mutex
	runCtx  context.Context // Run's, while it runs: the secret readers' parent
	readers sync.WaitGroup  // secret readers and the state publisher Run starts

	// life is the context of the goroutines the request path starts
	// (spawn); Close ends it and waits for them.
	life      context.Context
	stopLife  context.CancelFunc
	lifeMu    sync.Mutex // orders spawn's Add before Close's Wait
	lifeWG    sync.WaitGroup
	closeOnce sync.Once

	downUntil atomic.Int64 // unix nanos until which the ack path spools without trying Redis
	slow      atomic.Bool  // an enqueue is taking long: spool without trying Redis
}

// New returns a Receiver without accounts (SetAccounts adds them), or an
// error naming the setting that is wrong.
func New(cfg Config, deps Deps) (*Receiver, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if deps.Redis == nil {
		return nil, errors.New("inbound: Deps.Redis is required")
	}
	if deps.Tickets == nil {
		deps.Tickets = tickets.New(deps.Redis)
	}
	if deps.Asynq == nil {
		deps.Asynq = asynq.NewClientFromRedisClient(deps.Redis)
	}
	if deps.Inspector == nil {
		deps.Inspector = asynq.NewInspectorFromRedisClient(deps.Redis)
	}
	sp := &spool{wake: make(chan struct{}, 1)} // no directory: Append fails
	if !cfg.NoSpool {
		var err error
		if sp, err = openSpool(cfg.SpoolDir, cfg.SpoolMaxBytes); err != nil {
			return nil, validate.Errorf("inbound", "SpoolDir", "%v", err)
		}
	}
	r := &Receiver{
		cfg:     cfg,
		rdb:     deps.Redis,
		client:  deps.Asynq,
		insp:    deps.Inspector,
		tickets: deps.Tickets,
		log:     deps.Log,
		m:       newMetrics(deps.Metrics),
		spool:   sp,
		budget:  &bodyBudget{max: cfg.BodyBudgetBytes},
	}
	empty := map[string]*account{}
	r.accounts.Store(&empty)
	dl, err := sink.NewDeliverer(sink.DeliverConfig{
		URL:         cfg.SinkURL,
		Secret:      cfg.SinkSecret,
		OrderSettle: cfg.OrderSettle,
		OrderPoll:   cfg.OrderPoll,
		Now:         cfg.Now,
		Inspector:   deps.Inspector,
	}, deps.Redis, r.publisherOf, sinkClient(deps.SinkClient, cfg.SinkTimeout), deps.Log, deps.Metrics)
	if err != nil {
		sp.close()
		return nil, err
	}
	r.deliver = dl
	r.init()
	return r, nil
}

// sinkClient is hc (default a new client) with the sink timeout and
// without following redirects.
func sinkClient(hc *http.Client, timeout time.Duration) *http.Client {
	if hc == nil {
		hc = &http.Client{}
	}
	c := *hc
	c.Timeout = cmp.Or(c.Timeout, timeout)
	// a redirect would turn the POST into a GET without the event:
	// a 3xx is a failed attempt, retried
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// init finishes New: the life of the request path's goroutines, the
// spool's reporting.
func (r *Receiver) init() {
	r.life, r.stopLife = context.WithCancel(context.Background()) // ended by Close
	r.spool.onSkip = func(seq uint64, off, n int64) {
		r.log.Error().Uint64("segment", seq).Int64("offset", off).Int64("bytes", n).
			Msg("spool: bytes holding no complete record (damaged on disk) skipped")
	}
	r.m.spoolFiles.Set(float64(r.spool.Pending()))
	if n := r.spool.Pending(); n > 0 {
		r.log.Warn().Int64("spooled", n).Str("dir", r.cfg.SpoolDir).Msg("spooled webhook requests wait for Redis")
	}
}

// Close stops the goroutines the request path started (best-effort Redis
// writes, enqueue deadlines) and waits for them, then releases the spool
// directory (its lock). Call it after the HTTP server and Run have stopped
// (serve's shutdown order), before the Redis client is closed.
func (r *Receiver) Close() error {
	r.lifeMu.Lock()
	r.stopLife()
	r.lifeMu.Unlock()
	r.lifeWG.Wait()
	r.closeOnce.Do(r.spool.close)
	return nil
}

// SpoolPending is the number of requests waiting in the spool.
func (r *Receiver) SpoolPending() int64 { return r.spool.Pending() }

// Register adds the inbound task handlers to mux: the webhook task and the
// sink delivery, each running with the account its payload names (none: the
// default account). Registering them on every account's mux, or on one mux,
// works the same.
func (r *Receiver) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TaskWebhook, r.handleWebhookTask)
	mux.HandleFunc(sink.TaskDeliver, r.deliver.ProcessTask)
}

// Replay puts the account's failed sink deliveries back into delivery
// (sink.Replay).
func (r *Receiver) Replay(ctx context.Context, account string, opts sink.ReplayOptions) (sink.ReplayReport, error) {
	a, err := r.find(account)
	if err != nil {
		return sink.ReplayReport{}, err
	}
	return sink.Replay(ctx, r.rdb, a.pub, opts)
}

// received is the payload of a TaskWebhook task and of a spool record.
type received struct {
	// Account is the account whose path the request came in on; ""
	// (the previous release) is the default account.
	Account      string          `json:"account,omitempty"`
	Kind         string          `json:"kind"` // "webhook" or "target"
	InvocationID string          `json:"invocation_id,omitempty"`
	ReceivedAt   time.Time       `json:"received_at"`
	Body         json.RawMessage `json:"body"`
}

// Webhook is the handler of POST /v1/zendesk/webhook/{account} and of POST
// /v1/zendesk/webhook (no account in the path: the default account): 404
// for an account not configured.
func (r *Receiver) Webhook() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if a, ok := r.fromPath(w, req); ok {
			a.webhook(w, req)
		}
	})
}

// Target is the handler of POST /v1/zendesk/target/{account} and of POST
// /v1/zendesk/target (the default account), for a legacy target, which
// cannot sign: it checks the account's basic-auth login (404 when the
// account has none, or is not configured).
func (r *Receiver) Target() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		a, ok := r.fromPath(w, req)
		if !ok {
			return
		}
		if a.spec.TargetUser == "" {
			httpx.WriteError(w, http.StatusNotFound, "target_off", "the legacy target is off for account "+a.name()+": it has no target user and password")
			return
		}
		u, p, ok := req.BasicAuth()
		userOK, passwordOK := httpx.Equal(u, a.spec.TargetUser), httpx.Equal(p, a.spec.TargetPassword)
		if !ok || !userOK || !passwordOK {
			w.Header().Set("WWW-Authenticate", `Basic realm="deskrelay target"`)
			httpx.WriteError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong credentials")
			return
		}
		body, done, ok := r.readBody(w, req)
		if !ok {
			return
		}
		defer done()
		r.accept(w, a, "target", "", body, r.cfg.Now())
	})
}

// fromPath finds the account the request's path names ({account}; none:
// the default), answering 404 itself when it is not configured.
func (r *Receiver) fromPath(w http.ResponseWriter, req *http.Request) (*account, bool) {
	name := cmp.Or(req.PathValue("account"), keys.DefaultAccount)
	if a := r.lookup(name); a != nil {
		return a, true
	}
	r.m.rejected.WithLabelValues("unknown_account").Inc()
	msg := "no such account"
	if validate.AccountName(name) == "" {
		msg = "no account " + name + " is configured"
	}
	httpx.WriteError(w, http.StatusNotFound, "unknown_account", msg)
	return nil, false
}

// accept parses account a's verified body (400 when unreadable), then makes
// it durable: a TaskWebhook task, or a spool record when Redis does not
// answer.
func (r *Receiver) accept(w http.ResponseWriter, a *account, kind, invocationID string, body []byte, now time.Time) {
	pl, err := events.ParsePayload(body, events.SourceWebhook)
	if err != nil {
		r.m.rejected.WithLabelValues("malformed").Inc()
		a.log.Warn().Err(err).Str("kind", kind).Msg("webhook body unreadable")
		httpx.WriteError(w, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	a.noteReceived(now)
	if pl.Ignored {
		r.m.webhooks.WithLabelValues("ignored").Inc()
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ignored", "type": pl.Type})
		return
	}
	payload, err := json.Marshal(received{Account: a.name(), Kind: kind, InvocationID: invocationID, ReceivedAt: now.UTC(), Body: body})
	if err != nil { // cannot happen: body is valid JSON
		httpx.WriteError(w, http.StatusBadRequest, "malformed", "body is not JSON")
		return
	}
	status := "accepted"
	if r.spool.Pending() > 0 || now.UnixNano() < r.downUntil.Load() || r.slow.Load() {
		status = "spooled" // keep arrival order while the spool drains
	} else {
		err = r.enqueueWithin(payload, a.name(), invocationID)
		switch {
		case err == nil:
		case errors.Is(err, asynq.ErrTaskIDConflict):
			status = "duplicate"
		default:
			r.downUntil.Store(now.Add(time.Second).UnixNano())
			r.log.Warn().Err(err).Msg("redis unreachable: spooling webhook requests")
			status = "spooled"
		}
	}
	if status == "spooled" {
		if err := r.spool.Append(payload, now); err != nil {
			r.m.rejected.WithLabelValues("unavailable").Inc()
			r.log.Error().Err(err).Msg("cannot spool webhook request: answering 503")
			w.Header().Set("Retry-After", "10")
			httpx.WriteError(w, http.StatusServiceUnavailable, "unavailable", "cannot store the event now")
			return
		}
		r.m.spoolFiles.Set(float64(r.spool.Pending()))
	}
	r.m.webhooks.WithLabelValues(status).Inc()
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": status})
}

var errEnqueueSlow = errors.New("redis did not answer in time")

// enqueueWithin enqueues with a hard deadline of EnqueueTimeout, whatever
// the Redis client's own timeouts and dial retries are: a late success
// after the request was spooled is a duplicate that the task id and the
// event ledger drop.
func (r *Receiver) enqueueWithin(payload []byte, account, invocationID string) error {
	done := make(chan error, 1)
	if !r.spawn(func(life context.Context) {
		ctx, cancel := context.WithTimeout(life, r.cfg.EnqueueTimeout)
		defer cancel()
		done <- r.enqueueReceived(ctx, payload, account, invocationID, "")
	}) {
		return errClosed
	}
	timer := time.NewTimer(r.cfg.EnqueueTimeout)
	defer timer.Stop()
	slow := time.NewTimer(r.cfg.SlowEnqueue)
	defer slow.Stop()
	select {
	case err := <-done:
		return err
	case <-slow.C:
		// Redis is slow or gone: requests arriving meanwhile spool at once
		// instead of piling up behind this one
		r.slow.Store(true)
	}
	select {
	case err := <-done:
		if err == nil {
			r.slow.Store(false)
		}
		return err
	case <-timer.C:
		return errEnqueueSlow
	}
}

// background runs a best-effort Redis write off the request path, one at
// a time per kind (busy is its flag); it is skipped while Redis is down.
func (r *Receiver) background(busy *atomic.Bool, f func(ctx context.Context)) {
	if r.cfg.Now().UnixNano() < r.downUntil.Load() || !busy.CompareAndSwap(false, true) {
		return
	}
	if !r.spawn(func(life context.Context) {
		defer busy.Store(false)
		ctx, cancel := context.WithTimeout(life, time.Second)
		defer cancel()
		f(ctx)
	}) {
		busy.Store(false)
	}
}

var errClosed = errors.New("receiver closed")

// spawn runs f on a goroutine the Receiver owns: f's ctx ends with Close,
// which waits for f. After Close it runs nothing and returns false.
func (r *Receiver) spawn(f func(ctx context.Context)) bool {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if r.life.Err() != nil {
		return false
	}
	r.lifeWG.Add(1)
	go func() {
		defer r.lifeWG.Done()
		f(r.life)
	}()
	return true
}

// enqueueReceived makes a TaskWebhook task of account. Its id dedupes one
// invocation (while the task lives; the invocation ledger afterwards) and
// one spool record (whose content names the account).
func (r *Receiver) enqueueReceived(ctx context.Context, payload []byte, account, invocationID, spoolName string) error {
	opts := []asynq.Option{asynq.Queue(queues.Inbound), asynq.MaxRetry(queues.MaxRetry), asynq.Timeout(r.cfg.TaskTimeout)}
	switch {
	case invocationID != "":
		opts = append(opts, asynq.TaskID(webhookTaskID(account, invocationID)))
	case spoolName != "":
		opts = append(opts, asynq.TaskID("spool:"+spoolName))
	}
	_, err := r.client.EnqueueContext(ctx, asynq.NewTask(TaskWebhook, payload), opts...)
	return err
}

// webhookTaskID is the task id of account's webhook invocation: the default
// account's stays "webhook:<invocation>" (the previous release's), any
// other account's is "webhook:{<account>}:<invocation>".
func webhookTaskID(account, invocationID string) string {
	if account = events.AccountOf(account); account == keys.DefaultAccount {
		return "webhook:" + invocationID
	}
	return "webhook:{" + account + "}:" + invocationID
}

// Run moves spooled requests into Redis until ctx ends. It must run while
// the receiver takes requests: after an outage it is what lets the
// receiver use Redis directly again.
//
// While it runs, every account that waits for its signing secret reads it
// from Zendesk in the background (also an account SetAccounts adds), and
// every account's receiver state is written to Redis. All of that stops
// when ctx ends; Run returns after it has.
func (r *Receiver) Run(ctx context.Context) error {
	r.setMu.Lock()
	r.runCtx = ctx
	all := r.accountMap()
	for _, a := range all {
		r.startReader(a)
	}
	r.readers.Add(1)
	r.setMu.Unlock()
	go func() {
		defer r.readers.Done()
		for _, a := range all {
			if ctx.Err() != nil {
				return
			}
			if _, state := a.signingSecret(); state != ReceiverWaiting {
				a.publishState(ctx)
			}
		}
	}()
	err := r.moveSpool(ctx)
	r.setMu.Lock()
	r.runCtx = nil
	r.setMu.Unlock()
	r.readers.Wait()
	return err
}
