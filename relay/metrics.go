package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/promx"
	"github.com/deskrelay/deskrelay/internal/queues"
)

// metrics are the relay's Prometheus collectors. The vectors are shared by
// every Relay registered on the same Registerer (promx.Register); the
// per-account series carry the label "account", and the fields below are
// already bound to the relay's account.
type metrics struct {
	intake         *prometheus.CounterVec // result
	deliveries     *prometheus.CounterVec // outcome (account bound)
	zendeskStatus  *prometheus.CounterVec // op, code
	rateLimitWaits prometheus.Counter
	gateClosed     prometheus.Gauge
	gateParked     prometheus.Counter
	orderGaps      prometheus.Counter

	// the account-labelled vectors, to forget an account's series
	vecs []interface {
		DeletePartialMatch(prometheus.Labels) int
	}
}

// newMetrics builds the collectors, registers them on reg (nil: kept
// unregistered, so that the code needs no nil checks) and binds the
// per-account ones to account.
func newMetrics(reg prometheus.Registerer, account string) (*metrics, error) {
	acct := []string{"account"}
	intake := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deskrelay_outbound_intake_total",
		Help: "Messages offered to POST /v1/messages or Enqueue, by result (accepted, duplicate, conflict, invalid, unavailable).",
	}, []string{"result"})
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deskrelay_outbound_deliveries_total",
		Help: "Outbound delivery attempts by account and outcome (delivered, retry, rate_limited, failed_unauthorized, failed_invalid).",
	}, []string{"account", "outcome"})
	zendeskStatus := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deskrelay_outbound_zendesk_responses_total",
		Help: "Zendesk answers to the outbound relay by operation and status code (2xx, 4xx/5xx codes, transport).",
	}, []string{"op", "code"})
	rateLimitWaits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deskrelay_outbound_rate_limit_waits_total",
		Help: "Times an outbound task of the account waited for the rate limit (shared limiter, 429, per-ticket limit), without counting an attempt.",
	}, acct)
	gateClosed := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "deskrelay_outbound_gate_closed",
		Help: "1 while the account's outbound outage gate is closed (Zendesk considered down), else 0 (as seen by this process).",
	}, acct)
	gateParked := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deskrelay_outbound_gate_parked_total",
		Help: "Outbound tasks of the account parked off the shared queue (closed outage gate, spent budget, backlog).",
	}, acct)
	orderGaps := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deskrelay_outbound_order_gaps_total",
		Help: "Conversations that went on after waiting the order gap timeout for a missing sequence.",
	})
	if reg != nil {
		var err error
		register(reg, &intake, &err)
		register(reg, &deliveries, &err)
		register(reg, &zendeskStatus, &err)
		register(reg, &rateLimitWaits, &err)
		register(reg, &gateClosed, &err)
		register(reg, &gateParked, &err)
		register(reg, &orderGaps, &err)
		if err != nil {
			return nil, fmt.Errorf("relay metrics: %w", err)
		}
	}
	one := prometheus.Labels{"account": account}
	m := &metrics{
		intake:         intake,
		deliveries:     deliveries.MustCurryWith(one),
		zendeskStatus:  zendeskStatus,
		rateLimitWaits: rateLimitWaits.With(one),
		gateClosed:     gateClosed.With(one),
		gateParked:     gateParked.With(one),
		orderGaps:      orderGaps,
		vecs:           []interface{ DeletePartialMatch(prometheus.Labels) int }{deliveries, rateLimitWaits, gateClosed, gateParked},
	}
	return m, nil
}

// forget removes the account's series (the account was closed or removed).
func (m *metrics) forget(account string) {
	for _, v := range m.vecs {
		v.DeletePartialMatch(prometheus.Labels{"account": account})
	}
}

// register registers *c, or takes the collector already registered under
// its name (a second Relay on the same registry shares the vectors).
func register[T prometheus.Collector](reg prometheus.Registerer, c *T, errp *error) {
	if *errp != nil {
		return
	}
	*c, *errp = promx.Register(reg, *c)
}

// oldestScan bounds how many tasks of each asynq state OldestPending reads.
const oldestScan = 1000

// ownsPayload reports whether a task payload's account is the relay's.
func (r *Relay) ownsPayload(account string) bool {
	if account == "" {
		account = keys.DefaultAccount
	}
	return account == r.space.Account()
}

// Parked counts the account's messages parked off the shared queue
// (closed gate, spent budget, backlog: park.go), for a per-account backlog
// gauge.
func (r *Relay) Parked(ctx context.Context) (int64, error) {
	return r.rdb.ZCard(ctx, r.space.OutboundParked()).Result()
}

// OldestPending returns when the account's oldest outbound message that is neither
// delivered nor failed was accepted (ok is false when there is none): the
// deskrelay_outbound_oldest_pending_age_seconds gauge. It reads the message
// tasks of every asynq state (pending from the oldest, active, scheduled and
// retry) up to oldestScan per state, keeps the account's (the queue is
// shared by every account), adds the oldest of the account's parked
// messages, and reads their records' accepted_at in one pipeline: cheap at
// any backlog, and exact while each state holds fewer than oldestScan tasks
// (beyond, it is the oldest of those read).
func (r *Relay) OldestPending(ctx context.Context) (time.Time, bool, error) {
	qs, err := r.insp.Queues()
	if err != nil || !slices.Contains(qs, queues.Outbound) {
		return time.Time{}, false, err
	}
	page := asynq.PageSize(oldestScan)
	lists := []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		r.insp.ListPendingTasks, r.insp.ListActiveTasks, r.insp.ListScheduledTasks, r.insp.ListRetryTasks,
	}
	var ids []string
	for _, list := range lists {
		tasks, err := list(queues.Outbound, page)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("oldest pending message: %w", err)
		}
		for _, t := range tasks {
			var p taskPayload
			if t.Type == TypeMessage && json.Unmarshal(t.Payload, &p) == nil && p.ID != "" && r.ownsPayload(p.Account) {
				ids = append(ids, p.ID)
			}
		}
	}
	// The oldest parked messages, which a scan of the shared queue may not
	// reach behind other accounts' tasks.
	oldParked, err := r.rdb.ZRange(ctx, r.space.OutboundParked(), 0, 9).Result()
	if err != nil {
		return time.Time{}, false, fmt.Errorf("oldest pending message: %w", err)
	}
	ids = append(ids, oldParked...)
	if len(ids) == 0 {
		return time.Time{}, false, nil
	}
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, r.space.Message(id), "state", "accepted_at")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return time.Time{}, false, fmt.Errorf("oldest pending message: %w", err)
	}
	var oldest int64
	for _, c := range cmds {
		v := c.Val()
		if len(v) != 2 || v[0] != StateQueued { // delivered or failed while its task ends
			continue
		}
		ms, _ := strconv.ParseInt(fmt.Sprint(v[1]), 10, 64)
		if ms > 0 && (oldest == 0 || ms < oldest) {
			oldest = ms
		}
	}
	return time.UnixMilli(oldest), oldest > 0, nil
}

// CredentialsUnauthorized reports whether Zendesk rejects deskrelay's
// credentials (a 401/403 not yet cleared by the credentials probe), as
// every replica sees it in Redis: the deskrelay_outbound_credentials_unauthorized
// gauge.
func (r *Relay) CredentialsUnauthorized(ctx context.Context) (bool, error) {
	c, err := r.credentialsState(ctx)
	return c.State == CredentialsUnauthorized, err
}
