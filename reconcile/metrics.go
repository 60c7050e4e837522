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
	var errs [9]error
	m.runs, errs[0] = promx.Register(reg, m.runs)
	m.events, errs[1] = promx.Register(reg, m.events)
	m.missing, errs[2] = promx.Register(reg, m.missing)
	m.requests, errs[3] = promx.Register(reg, m.requests)
	m.waited, errs[4] = promx.Register(reg, m.waited)
	m.reenables, errs[5] = promx.Register(reg, m.reenables)
	m.webhookUp, errs[6] = promx.Register(reg, m.webhookUp)
	m.failures, errs[7] = promx.Register(reg, m.failures)
	_, errs[8] = promx.Register(reg, age)
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

func (m *metrics) watched(kind string, active bool, failures int) {
	if m == nil || kind == "" {
		return
	}
	v := 0.0
	if active {
		v = 1
	}
	m.webhookUp.WithLabelValues(kind).Set(v)
	m.failures.Set(float64(failures))
}
