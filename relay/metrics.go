package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
)

// metrics are the relay's Prometheus collectors.
type metrics struct {
	intake         *prometheus.CounterVec // result
	deliveries     *prometheus.CounterVec // outcome
	zendeskStatus  *prometheus.CounterVec // op, code
	rateLimitWaits prometheus.Counter
	gateClosed     prometheus.Gauge
	gateParked     prometheus.Counter
	orderGaps      prometheus.Counter
}

// newMetrics builds the collectors and registers them on reg (nil: kept
// unregistered, so that the code needs no nil checks).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		intake: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_outbound_intake_total",
			Help: "Messages offered to POST /v1/messages or Enqueue, by result (accepted, duplicate, conflict, invalid, unavailable).",
		}, []string{"result"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_outbound_deliveries_total",
			Help: "Outbound delivery attempts by outcome (delivered, retry, rate_limited, failed_unauthorized, failed_invalid).",
		}, []string{"outcome"}),
		zendeskStatus: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_outbound_zendesk_responses_total",
			Help: "Zendesk answers to the outbound relay by operation and status code (2xx, 4xx/5xx codes, transport).",
		}, []string{"op", "code"}),
		rateLimitWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskrelay_outbound_rate_limit_waits_total",
			Help: "Times an outbound task waited for the rate limit (shared limiter, 429, per-ticket limit), without counting an attempt.",
		}),
		gateClosed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deskrelay_outbound_gate_closed",
			Help: "1 while the outbound outage gate is closed (Zendesk considered down), else 0 (as seen by this process).",
		}),
		gateParked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskrelay_outbound_gate_parked_total",
			Help: "Outbound tasks parked by the closed outage gate.",
		}),
		orderGaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskrelay_outbound_order_gaps_total",
			Help: "Conversations that went on after waiting the order gap timeout for a missing sequence.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	register(reg, &m.intake, &err)
	register(reg, &m.deliveries, &err)
	register(reg, &m.zendeskStatus, &err)
	register(reg, &m.rateLimitWaits, &err)
	register(reg, &m.gateClosed, &err)
	register(reg, &m.gateParked, &err)
	register(reg, &m.orderGaps, &err)
	if err != nil {
		return nil, fmt.Errorf("relay metrics: %w", err)
	}
	return m, nil
}

// register registers *c, or takes the collector already registered under
// its name (a second Relay on the same registry shares the counters).
func register[T prometheus.Collector](reg prometheus.Registerer, c *T, errp *error) {
	if *errp != nil {
		return
	}
	err := reg.Register(*c)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
	case errors.As(err, &are):
		if existing, ok := are.ExistingCollector.(T); ok {
			*c = existing
		}
	default:
		*errp = err
	}
}

// oldestScan bounds how many tasks of each asynq state OldestPending reads.
const oldestScan = 1000

// OldestPending returns when the oldest outbound message that is neither
// delivered nor failed was accepted (ok is false when there is none): the
// deskrelay_outbound_oldest_pending_age_seconds gauge. It reads the message
// tasks of every asynq state (pending from the oldest, active, scheduled and
// retry) up to oldestScan per state, and their records' accepted_at in one
// pipeline: cheap at any backlog, and exact while each state holds fewer
// than oldestScan tasks (beyond, it is the oldest of those read).
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
			if t.Type == TypeMessage && json.Unmarshal(t.Payload, &p) == nil && p.ID != "" {
				ids = append(ids, p.ID)
			}
		}
	}
	if len(ids) == 0 {
		return time.Time{}, false, nil
	}
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, keys.Default.Message(id), "state", "accepted_at")
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
