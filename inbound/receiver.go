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
	"github.com/deskrelay/deskrelay/zendesk"
)

// TaskWebhook is the asynq task type of a received, verified webhook body
// (payload: received), turned into events by its handler.
const TaskWebhook = "inbound:webhook"

// HeaderInvocationID is the header Zendesk sends with every webhook call;
// retries of one invocation share it.
const HeaderInvocationID = "X-Zendesk-Webhook-Invocation-Id"

// Deps are the Receiver's collaborators.
type Deps struct {
	// Redis is deskrelay's Redis (asynq shares it). Required.
	Redis redis.UniversalClient
	// Tickets is the record of managed tickets and own comments. Default
	// tickets.New(Redis).
	Tickets *tickets.Tickets
	// Zendesk reads comments named by trigger bodies. May be nil when only
	// the event-subscription envelope is used: trigger comments are then
	// dropped with a warning.
	Zendesk *zendesk.Client
	// Secrets reads the webhook's signing secret (Config.WebhookID). Default
	// Zendesk when set.
	Secrets SecretReader
	// Space is the account's Redis key space (the zero Space: keys.Default).
	// Used for the receiver's own keys: last received, signature failures,
	// receiver state.
	Space keys.Space
	// Limiter, when set, is asked before every Zendesk API call the
	// trigger path makes (the account's shared budget; budget.Limiter).
	Limiter RateLimiter
	// Publisher publishes events; default one built from Redis, Tickets and
	// the Config. Pass the same Publisher to the reconciler.
	Publisher *sink.Publisher
	// Log is the logger (main gives it component=inbound).
	Log zerolog.Logger
	// Metrics registers the inbound metrics; nil registers nothing.
	Metrics prometheus.Registerer
	// SinkClient replaces the HTTP client for sink deliveries (tests); its
	// Timeout is set to Config.SinkTimeout when zero.
	SinkClient *http.Client
}

// RateLimiter is the shared Zendesk request budget (*budget.Limiter).
type RateLimiter = budget.Account

// Receiver is the inbound path: the webhook endpoints, the spool mover and
// the task handlers.
type Receiver struct {
	cfg     Config
	rdb     redis.UniversalClient
	client  *asynq.Client
	tickets *tickets.Tickets
	zd      *zendesk.Client
	limiter RateLimiter
	users   *events.AuthorCache
	pub     *sink.Publisher
	log     zerolog.Logger
	m       *metrics
	spool   *spool
	deliver *sink.Deliverer
	stuck   stuckState

	// life is the context of the goroutines the request path starts
	// (spawn); Close ends it and waits for them.
	life      context.Context
	stopLife  context.CancelFunc
	lifeMu    sync.Mutex // orders spawn's Add before Close's Wait
	lifeWG    sync.WaitGroup
	closeOnce sync.Once
	budget    *bodyBudget
	secrets   SecretReader
	sec       secretState
	space     keys.Space

	downUntil     atomic.Int64 // unix nanos until which the ack path spools without trying Redis
	slow          atomic.Bool  // an enqueue is taking long: spool without trying Redis
	lastSeenWrite atomic.Int64 // unix nanos of the last WebhookLastReceived write
	busyReceived  atomic.Bool
	busyReread    atomic.Bool // a re-read of the signing secret after a failed verification

	sigMu       sync.Mutex
	sigRun      int64   // this process's current run, for logging
	sigOps      []int64 // signature-state changes not yet written (0 clear, n add)
	sigDirty    bool    // Redis may hold a run that a good signature must clear
	sigFlushing atomic.Bool
}

// New returns a Receiver, or an error naming the setting that is wrong.
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
	if deps.Publisher == nil {
		deps.Publisher = sink.NewPublisher(deps.Redis, deps.Tickets, sink.PublisherConfig{
			ForwardPrivate:  cfg.ForwardPrivate,
			LedgerRetention: cfg.LedgerRetention,
			TaskTimeout:     cfg.TaskTimeout,
			Now:             cfg.Now,
		})
	}
	sp := &spool{wake: make(chan struct{}, 1)} // no directory: Append fails
	if !cfg.NoSpool {
		var err error
		if sp, err = openSpool(cfg.SpoolDir, cfg.SpoolMaxBytes); err != nil {
			return nil, validate.Errorf("inbound", "SpoolDir", "%v", err)
		}
	}
	hc := deps.SinkClient
	if hc == nil {
		hc = &http.Client{}
	}
	{
		c := *hc
		c.Timeout = cmp.Or(c.Timeout, cfg.SinkTimeout)
		// a redirect would turn the POST into a GET without the event:
		// a 3xx is a failed attempt, retried
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		hc = &c
	}
	dl, err := sink.NewDeliverer(sink.DeliverConfig{
		URL:         cfg.SinkURL,
		Secret:      cfg.SinkSecret,
		OrderSettle: cfg.OrderSettle,
		OrderPoll:   cfg.OrderPoll,
		Now:         cfg.Now,
	}, deps.Redis, deps.Publisher, hc, deps.Log, deps.Metrics)
	if err != nil {
		return nil, err
	}
	r := &Receiver{
		cfg:     cfg,
		rdb:     deps.Redis,
		client:  asynq.NewClientFromRedisClient(deps.Redis),
		tickets: deps.Tickets,
		zd:      deps.Zendesk,
		limiter: deps.Limiter,
		users:   events.NewAuthorCache(10*time.Minute, 10000, cfg.Now),
		pub:     deps.Publisher,
		log:     deps.Log,
		m:       newMetrics(deps.Metrics),
		spool:   sp,
		deliver: dl,
		secrets: deps.Secrets,
		space:   keys.Default,
		budget:  &bodyBudget{max: cfg.BodyBudgetBytes},
	}
	r.init(deps)
	return r, nil
}

// init finishes New: owners, the secret's state, the spool's reporting.
func (r *Receiver) init(deps Deps) {
	r.life, r.stopLife = context.WithCancel(context.Background()) // ended by Close
	if deps.Space.Prefix() != "" {
		r.space = deps.Space
	}
	if r.secrets == nil && deps.Zendesk != nil {
		r.secrets = deps.Zendesk
	}
	r.initSecret()
	r.spool.onSkip = func(seq uint64, off, n int64) {
		r.log.Error().Uint64("segment", seq).Int64("offset", off).Int64("bytes", n).
			Msg("spool: bytes holding no complete record (damaged on disk) skipped")
	}
	r.sigDirty = true // clear a run left by an earlier process on the first good signature
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

// Publisher returns the Publisher the receiver uses (share it with the reconciler).
func (r *Receiver) Publisher() *sink.Publisher { return r.pub }

// SpoolPending is the number of requests waiting in the spool.
func (r *Receiver) SpoolPending() int64 { return r.spool.Pending() }

// Register adds the inbound task handlers to mux.
func (r *Receiver) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TaskWebhook, r.handleWebhookTask)
	mux.HandleFunc(sink.TaskDeliver, r.deliver.ProcessTask)
}

// Replay puts failed sink deliveries back into delivery (sink.Replay).
func (r *Receiver) Replay(ctx context.Context, opts sink.ReplayOptions) (sink.ReplayReport, error) {
	return sink.Replay(ctx, r.rdb, r.pub, opts)
}

// received is the payload of a TaskWebhook task and of a spool file.
type received struct {
	Kind         string          `json:"kind"` // "webhook" or "target"
	InvocationID string          `json:"invocation_id,omitempty"`
	ReceivedAt   time.Time       `json:"received_at"`
	Body         json.RawMessage `json:"body"`
}

// Webhook is the handler of POST /v1/zendesk/webhook.
func (r *Receiver) Webhook() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		secret, state := r.signingSecret()
		switch state {
		case ReceiverOff:
			httpx.WriteError(w, http.StatusNotFound, "receiver_off",
				"the webhook receiver is off: set DESKRELAY_WEBHOOK_SECRET (or DESKRELAY_ZENDESK_WEBHOOK_ID to read it from Zendesk)")
			return
		case ReceiverWaiting:
			r.m.rejected.WithLabelValues("waiting_for_secret").Inc()
			w.Header().Set("Retry-After", "10")
			httpx.WriteError(w, http.StatusServiceUnavailable, "waiting_for_secret", "the webhook's signing secret is being read from Zendesk")
			return
		}
		signed, ok := r.preflight(w, req)
		if !ok {
			return
		}
		body, done, ok := r.readBody(w, req)
		if !ok {
			return
		}
		defer done()
		now := r.cfg.Now()
		err := zendesk.VerifySignature(secret, body,
			req.Header.Get(zendesk.HeaderSignatureTimestamp), req.Header.Get(zendesk.HeaderSignature), now, r.cfg.MaxSkew)
		if err != nil {
			reason, msg := "signature", "webhook signature missing or wrong"
			switch {
			case errors.Is(err, zendesk.ErrTimestampSkew):
				reason, msg = "timestamp", "webhook signature timestamp more than "+r.cfg.MaxSkew.String()+" from now"
			case errors.Is(err, zendesk.ErrTimestampInvalid):
				reason, msg = "timestamp", "webhook signature timestamp is not ISO 8601"
			}
			if !signed {
				reason = "unsigned" // another webhook's call: anyone can send that
			}
			r.m.rejected.WithLabelValues(reason).Inc()
			if signed {
				r.noteSignatureFailure(now, err)
			}
			httpx.WriteError(w, http.StatusUnauthorized, "bad_signature", msg)
			return
		}
		r.noteSignatureOK()
		r.accept(w, req, "webhook", req.Header.Get(HeaderInvocationID), body, now)
	})
}

// Target is the handler of POST /v1/zendesk/target, for a legacy target,
// which cannot sign: main wraps it in basic auth.
func (r *Receiver) Target() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, done, ok := r.readBody(w, req)
		if !ok {
			return
		}
		defer done()
		r.accept(w, req, "target", "", body, r.cfg.Now())
	})
}

// accept parses the verified body (400 when unreadable), then makes it
// durable: a TaskWebhook task, or a spool file when Redis does not answer.
func (r *Receiver) accept(w http.ResponseWriter, _ *http.Request, kind, invocationID string, body []byte, now time.Time) {
	pl, err := events.ParsePayload(body, events.SourceWebhook)
	if err != nil {
		r.m.rejected.WithLabelValues("malformed").Inc()
		r.log.Warn().Err(err).Str("kind", kind).Msg("webhook body unreadable")
		httpx.WriteError(w, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	r.noteReceived(now)
	if pl.Ignored {
		r.m.webhooks.WithLabelValues("ignored").Inc()
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ignored", "type": pl.Type})
		return
	}
	payload, err := json.Marshal(received{Kind: kind, InvocationID: invocationID, ReceivedAt: now.UTC(), Body: body})
	if err != nil { // cannot happen: body is valid JSON
		httpx.WriteError(w, http.StatusBadRequest, "malformed", "body is not JSON")
		return
	}
	status := "accepted"
	if r.spool.Pending() > 0 || now.UnixNano() < r.downUntil.Load() || r.slow.Load() {
		status = "spooled" // keep arrival order while the spool drains
	} else {
		err = r.enqueueWithin(payload, invocationID)
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
func (r *Receiver) enqueueWithin(payload []byte, invocationID string) error {
	done := make(chan error, 1)
	if !r.spawn(func(life context.Context) {
		ctx, cancel := context.WithTimeout(life, r.cfg.EnqueueTimeout)
		defer cancel()
		done <- r.enqueueReceived(ctx, payload, invocationID, "")
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

// enqueueReceived makes a TaskWebhook task. Its id dedupes one invocation
// (while the task lives; the invocation ledger afterwards) and one spool file.
func (r *Receiver) enqueueReceived(ctx context.Context, payload []byte, invocationID, spoolName string) error {
	opts := []asynq.Option{asynq.Queue(queues.Inbound), asynq.MaxRetry(queues.MaxRetry), asynq.Timeout(r.cfg.TaskTimeout)}
	switch {
	case invocationID != "":
		opts = append(opts, asynq.TaskID("webhook:"+invocationID))
	case spoolName != "":
		opts = append(opts, asynq.TaskID("spool:"+spoolName))
	}
	_, err := r.client.EnqueueContext(ctx, asynq.NewTask(TaskWebhook, payload), opts...)
	return err
}

// Run moves spooled requests into Redis until ctx ends. It must run while
// the receiver takes requests: after an outage it is what lets the
// receiver use Redis directly again.
//
// It also reads the webhook's signing secret from Zendesk in the
// background when the receiver waits for it. Both stop when ctx ends.
func (r *Receiver) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.awaitSecret(ctx)
	}()
	err := r.moveSpool(ctx)
	<-done
	return err
}

// noteReceived records the time of the latest verified request, at most
// once a second per process, off the request path.
func (r *Receiver) noteReceived(now time.Time) {
	last := r.lastSeenWrite.Load()
	if now.UnixNano()-last < int64(time.Second) || !r.lastSeenWrite.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	r.background(&r.busyReceived, func(ctx context.Context) {
		if err := r.rdb.Set(ctx, r.space.WebhookLastReceived(), now.UnixMilli(), 0).Err(); err != nil {
			r.lastSeenWrite.Store(last)
		}
	})
}

// noteSignatureFailure counts a failure in the current run (written to
// Redis off the request path) and logs it, as an error when the run looks
// like a wrong webhook signing secret.
func (r *Receiver) noteSignatureFailure(_ time.Time, cause error) {
	r.sigMu.Lock()
	r.sigRun++
	n := r.sigRun
	if k := len(r.sigOps); k > 0 && r.sigOps[k-1] > 0 {
		r.sigOps[k-1]++
	} else {
		r.sigOps = append(r.sigOps, 1)
	}
	r.sigDirty = true
	r.sigMu.Unlock()
	ev := r.log.Warn()
	if n == 5 || n%100 == 0 {
		ev = r.log.Error()
	}
	ev.Int64("run", n).Str("reason", cause.Error()).Msg("webhook signature rejected")
	r.flushSignatures()
	if r.cfg.WebhookID != "" && r.secrets != nil {
		// A call naming this webhook fails verification: Zendesk may sign
		// with a secret this replica does not have yet (rotated, or re-read
		// by the guardian on another replica). RefreshSecret asks Zendesk
		// at most once a minute.
		r.background(&r.busyReread, func(ctx context.Context) { _ = r.RefreshSecret(ctx) })
	}
}

// noteSignatureOK ends a run of signature failures.
func (r *Receiver) noteSignatureOK() {
	r.sigMu.Lock()
	if !r.sigDirty {
		r.sigMu.Unlock()
		return
	}
	r.sigRun = 0
	r.sigOps = append(r.sigOps[:0], 0) // a clear replaces what was not written yet
	r.sigDirty = false
	r.sigMu.Unlock()
	r.flushSignatures()
}

// flushSignatures writes the queued signature-state changes (0: clear the
// run, n > 0: add n failures) in order, from one goroutine at a time.
func (r *Receiver) flushSignatures() {
	if !r.sigFlushing.CompareAndSwap(false, true) {
		return
	}
	if !r.spawn(func(life context.Context) {
		defer r.sigFlushing.Store(false)
		for life.Err() == nil {
			if !r.flushSignatureOp(life) {
				return
			}
		}
	}) {
		r.sigFlushing.Store(false)
	}
}

// flushSignatureOp writes the first queued signature-state change; it
// reports whether one was written (false: none left, or Redis failed and
// the changes stay for the next flush).
func (r *Receiver) flushSignatureOp(life context.Context) bool {
	r.sigMu.Lock()
	if len(r.sigOps) == 0 {
		r.sigMu.Unlock()
		return false
	}
	op := r.sigOps[0]
	r.sigMu.Unlock()
	ctx, cancel := context.WithTimeout(life, time.Second)
	defer cancel()
	key := r.space.WebhookSignatureFailures()
	var err error
	if op == 0 {
		err = r.rdb.Del(ctx, key).Err()
	} else {
		now := r.cfg.Now().UnixMilli()
		_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HIncrBy(ctx, key, "run", op)
			p.HSetNX(ctx, key, "first_at", now)
			p.HSet(ctx, key, "last_at", now)
			return nil
		})
	}
	r.sigMu.Lock()
	defer r.sigMu.Unlock()
	if err != nil {
		if op == 0 {
			r.sigDirty = true // try the clear again with the next good signature
		}
		return false
	}
	if len(r.sigOps) > 0 && r.sigOps[0] == op {
		r.sigOps = r.sigOps[1:]
	} else if len(r.sigOps) > 0 && op > 0 && r.sigOps[0] > op {
		r.sigOps[0] -= op // more failures were added to the op while it was written
	} // else a clear replaced the op meanwhile: nothing to drop
	return true
}
