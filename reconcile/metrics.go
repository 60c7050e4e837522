package reconcile

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/promx"
)

// metrics are the reconciler's Prometheus metrics; a nil *metrics records
// nothing. The Reconcilers of several accounts share the collectors (one
// registration, promx.Register); the series that describe one account's
// state (runs, the last success, the checkpoint's age, the watched webhook
// or target) carry the label "account". The totals of events, requests and
// waits are the deployment's, summed over the accounts.
type metrics struct {
	account     string
	runs        *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	events      *prometheus.CounterVec
	missing     prometheus.Counter
	requests    prometheus.Counter
	waited      prometheus.Counter
	reenables   *prometheus.CounterVec
	webhookUp   *prometheus.GaugeVec
	failures    *prometheus.GaugeVec
	rejections  *prometheus.GaugeVec
	rereads     *prometheus.CounterVec
	ages        *checkpointAges
	lastCPUnix  atomic.Int64
}

func newMetrics(reg prometheus.Registerer, r *Reconciler) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		account: r.Account(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_reconcile_runs_total",
			Help: "Scheduled reconcile runs by account and outcome (ok, error, busy: another run held the lease).",
		}, []string{"account", "outcome"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "deskrelay_reconcile_last_success_timestamp_seconds",
			Help: "When the account's last scheduled reconcile run that ended without error finished (unix seconds).",
		}, []string{"account"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_reconcile_events_total",
			Help: "Events the reconciler found on managed tickets, by result (enqueued, duplicate, filtered).",
		}, []string{"result"}),
		missing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskrelay_reconcile_gaps_found_total",
			Help: "Events the webhook path had not delivered, found and enqueued by the reconciler.",
		}),
		requests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskrelay_reconcile_zendesk_requests_total",
			Help: "Zendesk API requests made by the reconciler.",
		}),
		waited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskrelay_reconcile_rate_limit_wait_seconds_total",
			Help: "Time the reconciler waited on rate limits (export limit, shared limiter, 429).",
		}),
		reenables: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_webhook_reenables_total",
			Help: "Times the guardian re-activated the Zendesk webhook or target, by kind.",
		}, []string{"kind"}),
		webhookUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_active",
			Help: "1 when the account's watched Zendesk webhook or target was active at the last check, else 0.",
		}, []string{"account", "kind"}),
		failures: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_consecutive_failures",
			Help: "Consecutive failed deliveries Zendesk reports for the account's watched target (21 deactivates it).",
		}, []string{"account"}),
		rejections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_signature_rejections",
			Help: "Zendesk's calls that deskrelay answered 401 since the last verified call or secret re-read, by account and kind (Zendesk's own record: a wrong secret); above 0 stops re-activation.",
		}, []string{"account", "kind"}),
		rereads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_webhook_secret_rereads_total",
			Help: "Times the guardian had the receiver read the webhook's signing secret again after Zendesk's calls were answered 401, by result (ok, error).",
		}, []string{"result"}),
		ages: newCheckpointAges(),
	}
	var errs [12]error
	m.runs, errs[0] = promx.Register(reg, m.runs)
	m.events, errs[1] = promx.Register(reg, m.events)
	m.missing, errs[2] = promx.Register(reg, m.missing)
	m.requests, errs[3] = promx.Register(reg, m.requests)
	m.waited, errs[4] = promx.Register(reg, m.waited)
	m.reenables, errs[5] = promx.Register(reg, m.reenables)
	m.webhookUp, errs[6] = promx.Register(reg, m.webhookUp)
	m.failures, errs[7] = promx.Register(reg, m.failures)
	m.ages, errs[8] = promx.Register(reg, m.ages)
	m.rejections, errs[9] = promx.Register(reg, m.rejections)
	m.rereads, errs[10] = promx.Register(reg, m.rereads)
	m.lastSuccess, errs[11] = promx.Register(reg, m.lastSuccess)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	m.ages.add(r, m)
	return m, nil
}

// forget drops r's series from the shared checkpoint-age collector.
func (m *metrics) forget(r *Reconciler) {
	if m != nil {
		m.ages.remove(r)
	}
}

// checkpointAges is deskrelay_reconcile_checkpoint_age_seconds{account}, one
// collector for every account's Reconciler on a registry: a scrape reads
// all the accounts' checkpoints in one pipeline per Redis client (one round
// trip, however many accounts), not one GET per account.
type checkpointAges struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	rs   map[string]ageSource // by account
}

// ageSource is one account's Reconciler and its metrics (the last
// checkpoint this process moved, for when Redis does not answer).
type ageSource struct {
	r *Reconciler
	m *metrics
}

func newCheckpointAges() *checkpointAges {
	return &checkpointAges{
		desc: prometheus.NewDesc("deskrelay_reconcile_checkpoint_age_seconds",
			"How far behind now the account's scheduled reconcile checkpoint is.", []string{"account"}, nil),
		rs: map[string]ageSource{},
	}
}

func (c *checkpointAges) add(r *Reconciler, m *metrics) {
	c.mu.Lock()
	c.rs[r.Account()] = ageSource{r: r, m: m}
	c.mu.Unlock()
}

func (c *checkpointAges) remove(r *Reconciler) {
	c.mu.Lock()
	if c.rs[r.Account()].r == r {
		delete(c.rs, r.Account())
	}
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *checkpointAges) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector: the checkpoint's age, or (Redis
// unreadable) the age of the last checkpoint this process moved, or 0.
func (c *checkpointAges) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	byClient := map[redis.UniversalClient][]ageSource{}
	for _, s := range c.rs {
		byClient[s.r.rdb] = append(byClient[s.r.rdb], s)
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for rdb, srcs := range byClient {
		cmds := make([]*redis.StringCmd, len(srcs))
		_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, s := range srcs {
				cmds[i] = p.Get(ctx, exportCheckpoint.key(s.r.space))
			}
			return nil
		})
		for i, s := range srcs {
			age := 0.0
			if v, err := cmds[i].Int64(); err == nil {
				age = s.r.cfg.Now().Sub(time.Unix(v, 0)).Seconds()
			} else if v := s.m.lastCPUnix.Load(); v > 0 {
				age = s.r.cfg.Now().Sub(time.Unix(v, 0)).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, age, s.r.Account())
		}
	}
}

func (m *metrics) run(outcome string) {
	if m != nil {
		m.runs.WithLabelValues(m.account, outcome).Inc()
	}
}

// succeeded records the end of a scheduled run without error.
func (m *metrics) succeeded(at time.Time) {
	if m != nil {
		m.lastSuccess.WithLabelValues(m.account).Set(float64(at.Unix()))
	}
}

func (m *metrics) report(rep Report) {
	if m == nil || rep.DryRun {
		return
	}
	m.events.WithLabelValues("enqueued").Add(float64(rep.Enqueued))
	m.events.WithLabelValues("duplicate").Add(float64(rep.AlreadyDelivered))
	m.events.WithLabelValues("filtered").Add(float64(rep.filteredTotal()))
	m.missing.Add(float64(rep.Enqueued))
	m.requests.Add(float64(rep.ZendeskRequests))
	m.waited.Add(rep.RateLimitWait.Seconds())
}

func (m *metrics) checkpoint(at time.Time) {
	if m != nil {
		m.lastCPUnix.Store(at.Unix())
	}
}

func (m *metrics) reenabled(kind string) {
	if m != nil {
		m.reenables.WithLabelValues(kind).Inc()
	}
}

func (m *metrics) watched(kind string, active bool, failures, rejections int) {
	if m == nil || kind == "" {
		return
	}
	v := 0.0
	if active {
		v = 1
	}
	m.webhookUp.WithLabelValues(m.account, kind).Set(v)
	m.failures.WithLabelValues(m.account).Set(float64(failures))
	m.rejections.WithLabelValues(m.account, kind).Set(float64(rejections))
}

func (m *metrics) secretReread(result string) {
	if m != nil {
		m.rereads.WithLabelValues(result).Inc()
	}
}

// invMetrics are the metrics of the recovery from invocations and of the
// breaker's early warning; a nil *invMetrics records nothing. The gauges
// of the webhook's recent record carry the label "account".
type invMetrics struct {
	account     string
	invocations *prometheus.CounterVec
	ratio       *prometheus.GaugeVec
	requests    *prometheus.GaugeVec
	failed      *prometheus.GaugeVec
	broken      *prometheus.GaugeVec
	throttled   *prometheus.GaugeVec
	warnings    prometheus.Counter
}

func newInvMetrics(reg prometheus.Registerer, account string) (*invMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	acct := []string{"account"}
	m := &invMetrics{
		account: account,
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_reconcile_invocations_total",
			Help: "Non-success webhook invocations the reconciler read, by result (recovered, already_processed, unparseable, no_payload, left_to_export).",
		}, []string{"result"}),
		ratio: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_failure_ratio",
			Help: "Share of Zendesk's webhook requests to deskrelay that failed in the guardian's window, by account (Zendesk's breaker trips at 0.7 of at least 100).",
		}, acct),
		requests: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_recent_requests",
			Help: "Webhook requests Zendesk made to deskrelay in the guardian's window (5m), by account.",
		}, acct),
		failed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_recent_failures",
			Help: "Failed webhook requests in the guardian's window, by account and the status Zendesk got (an HTTP code, or timeout/failed when none).",
		}, []string{"account", "zendesk_status"}),
		broken: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_circuit_broken",
			Help: "Webhook events Zendesk's circuit breaker dropped in the guardian's window, by account.",
		}, acct),
		throttled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_throttled",
			Help: "Webhook events Zendesk held back and never sent (invocation status throttled) in the guardian's window, by account.",
		}, acct),
		warnings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskrelay_webhook_breaker_warnings_total",
			Help: "Guardian checks that warned of the webhook's failure ratio before (or after) Zendesk's circuit breaker tripped.",
		}),
	}
	var errs [7]error
	m.invocations, errs[0] = promx.Register(reg, m.invocations)
	m.ratio, errs[1] = promx.Register(reg, m.ratio)
	m.requests, errs[2] = promx.Register(reg, m.requests)
	m.failed, errs[3] = promx.Register(reg, m.failed)
	m.broken, errs[4] = promx.Register(reg, m.broken)
	m.warnings, errs[5] = promx.Register(reg, m.warnings)
	m.throttled, errs[6] = promx.Register(reg, m.throttled)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *invMetrics) recovered(ir *InvocationsReport) {
	if m == nil || ir == nil {
		return
	}
	m.invocations.WithLabelValues("recovered").Add(float64(ir.Recovered))
	m.invocations.WithLabelValues("already_processed").Add(float64(ir.AlreadyProcessed))
	m.invocations.WithLabelValues("no_payload").Add(float64(ir.NoPayload))
	m.invocations.WithLabelValues("left_to_export").Add(float64(ir.LeftToExport))
}

func (m *invMetrics) unparseable() {
	if m != nil {
		m.invocations.WithLabelValues("unparseable").Inc()
	}
}

func (m *invMetrics) breaker(bs *BreakerState) {
	if m == nil {
		return
	}
	m.ratio.WithLabelValues(m.account).Set(bs.FailureRatio)
	m.requests.WithLabelValues(m.account).Set(float64(bs.Requests))
	m.broken.WithLabelValues(m.account).Set(float64(bs.CircuitBroken))
	m.throttled.WithLabelValues(m.account).Set(float64(bs.Throttled))
	m.failed.DeletePartialMatch(prometheus.Labels{"account": m.account})
	for k, n := range bs.StatusCodes {
		m.failed.WithLabelValues(m.account, k).Set(float64(n))
	}
	if bs.Warning {
		m.warnings.Inc()
	}
}
