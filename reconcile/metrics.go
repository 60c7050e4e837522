package reconcile

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deskrelay/deskrelay/internal/promx"
)

// metrics are the reconciler's Prometheus metrics; a nil *metrics records
// nothing.
type metrics struct {
	runs       *prometheus.CounterVec
	events     *prometheus.CounterVec
	missing    prometheus.Counter
	requests   prometheus.Counter
	waited     prometheus.Counter
	reenables  *prometheus.CounterVec
	webhookUp  *prometheus.GaugeVec
	failures   prometheus.Gauge
	rejections *prometheus.GaugeVec
	rereads    *prometheus.CounterVec
	lastCPUnix atomic.Int64
}

func newMetrics(reg prometheus.Registerer, r *Reconciler) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_reconcile_runs_total",
			Help: "Scheduled reconcile runs by outcome (ok, error, busy: another run held the lease).",
		}, []string{"outcome"}),
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
			Help: "1 when the watched Zendesk webhook or target was active at the last check, else 0.",
		}, []string{"kind"}),
		failures: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_consecutive_failures",
			Help: "Consecutive failed deliveries Zendesk reports for the watched target (21 deactivates it).",
		}),
		rejections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_signature_rejections",
			Help: "Zendesk's calls that deskrelay answered 401 since the last verified call or secret re-read, by kind (Zendesk's own record: a wrong secret); above 0 stops re-activation.",
		}, []string{"kind"}),
		rereads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_webhook_secret_rereads_total",
			Help: "Times the guardian had the receiver read the webhook's signing secret again after Zendesk's calls were answered 401, by result (ok, error).",
		}, []string{"result"}),
	}
	age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "deskrelay_reconcile_checkpoint_age_seconds",
		Help: "How far behind now the scheduled reconcile checkpoint is.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if cp, ok, err := r.Checkpoint(ctx); err == nil && ok {
			return r.cfg.Now().Sub(cp).Seconds()
		}
		if v := m.lastCPUnix.Load(); v > 0 {
			return r.cfg.Now().Sub(time.Unix(v, 0)).Seconds()
		}
		return 0
	})
	var errs [11]error
	m.runs, errs[0] = promx.Register(reg, m.runs)
	m.events, errs[1] = promx.Register(reg, m.events)
	m.missing, errs[2] = promx.Register(reg, m.missing)
	m.requests, errs[3] = promx.Register(reg, m.requests)
	m.waited, errs[4] = promx.Register(reg, m.waited)
	m.reenables, errs[5] = promx.Register(reg, m.reenables)
	m.webhookUp, errs[6] = promx.Register(reg, m.webhookUp)
	m.failures, errs[7] = promx.Register(reg, m.failures)
	_, errs[8] = promx.Register(reg, age)
	m.rejections, errs[9] = promx.Register(reg, m.rejections)
	m.rereads, errs[10] = promx.Register(reg, m.rereads)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) run(outcome string) {
	if m != nil {
		m.runs.WithLabelValues(outcome).Inc()
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
	m.webhookUp.WithLabelValues(kind).Set(v)
	m.failures.Set(float64(failures))
	m.rejections.WithLabelValues(kind).Set(float64(rejections))
}

func (m *metrics) secretReread(result string) {
	if m != nil {
		m.rereads.WithLabelValues(result).Inc()
	}
}

// invMetrics are the metrics of the recovery from invocations and of the
// breaker's early warning; a nil *invMetrics records nothing.
type invMetrics struct {
	invocations *prometheus.CounterVec
	ratio       prometheus.Gauge
	requests    prometheus.Gauge
	failed      *prometheus.GaugeVec
	broken      prometheus.Gauge
	throttled   prometheus.Gauge
	warnings    prometheus.Counter
}

func newInvMetrics(reg prometheus.Registerer) (*invMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &invMetrics{
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_reconcile_invocations_total",
			Help: "Non-success webhook invocations the reconciler read, by result (recovered, already_processed, unparseable, no_payload, left_to_export).",
		}, []string{"result"}),
		ratio: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_failure_ratio",
			Help: "Share of Zendesk's webhook requests to deskrelay that failed in the guardian's window (Zendesk's breaker trips at 0.7 of at least 100).",
		}),
		requests: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_recent_requests",
			Help: "Webhook requests Zendesk made to deskrelay in the guardian's window (5m).",
		}),
		failed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_recent_failures",
			Help: "Failed webhook requests in the guardian's window, by the status Zendesk got (an HTTP code, or timeout/failed when none).",
		}, []string{"zendesk_status"}),
		broken: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_circuit_broken",
			Help: "Webhook events Zendesk's circuit breaker dropped in the guardian's window.",
		}),
		throttled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_throttled",
			Help: "Webhook events Zendesk held back and never sent (invocation status throttled) in the guardian's window.",
		}),
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
	m.ratio.Set(bs.FailureRatio)
	m.requests.Set(float64(bs.Requests))
	m.broken.Set(float64(bs.CircuitBroken))
	m.throttled.Set(float64(bs.Throttled))
	m.failed.Reset()
	for k, n := range bs.StatusCodes {
		m.failed.WithLabelValues(k).Set(float64(n))
	}
	if bs.Warning {
		m.warnings.Inc()
	}
}
