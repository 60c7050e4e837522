package main

import (
	"context"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/relay"
)

// queueCollector exports asynq's queue sizes and latencies to Prometheus,
// read through the Inspector at scrape time. (asynq's own x/metrics module
// pins go-redis v8 and a 2021 asynq; these few lines earn their place instead.)
type queueCollector struct {
	insp *asynq.Inspector
	log  zerolog.Logger
	// outbound reads the outbound relay's Redis-backed state (*relay.Relay);
	// nil: none.
	outbound func() map[string]outboundState // each account's relay, by account
	now      func() time.Time

	size, latency, processed, failed, paused     *prometheus.Desc
	byState                                      *prometheus.Desc
	oldestAge, unauthorized, backlog, failedMsgs *prometheus.Desc
}

// outboundState is what the collector reads of an account's relay: its
// summary, one round trip (*relay.Relay).
type outboundState interface {
	Summary(ctx context.Context) (relay.Summary, error)
}

func newQueueCollector(insp *asynq.Inspector, outbound func() map[string]outboundState, log zerolog.Logger) *queueCollector {
	q, acct := []string{"queue"}, []string{"account"}
	return &queueCollector{
		insp:     insp,
		log:      log,
		outbound: outbound,
		now:      time.Now,
		unauthorized: prometheus.NewDesc("deskrelay_outbound_credentials_unauthorized",
			"1 while Zendesk rejects the account's credentials (401/403; outbound messages fail as unauthorized until the probe sees them work), else 0.", acct, nil),
		oldestAge:  prometheus.NewDesc("deskrelay_outbound_oldest_pending_age_seconds", "Age of the account's oldest outbound message neither delivered nor failed (0 when there is none).", acct, nil),
		backlog:    prometheus.NewDesc("deskrelay_outbound_backlog", "The account's outbound messages accepted and neither delivered nor failed.", acct, nil),
		failedMsgs: prometheus.NewDesc("deskrelay_outbound_failed_messages", "The account's failed outbound messages kept for replay or discard.", acct, nil),
		size:       prometheus.NewDesc("deskrelay_queue_size", "Tasks in the queue, in every state.", q, nil),
		byState:    prometheus.NewDesc("deskrelay_queue_tasks", "Tasks in the queue by state.", []string{"queue", "state"}, nil),
		latency:    prometheus.NewDesc("deskrelay_queue_latency_seconds", "Age of the oldest pending task.", q, nil),
		processed:  prometheus.NewDesc("deskrelay_queue_processed_total", "Tasks processed (succeeded or failed) since the queue's stats began.", q, nil),
		failed:     prometheus.NewDesc("deskrelay_queue_failed_total", "Task attempts that failed since the queue's stats began.", q, nil),
		paused:     prometheus.NewDesc("deskrelay_queue_paused", "1 when the queue is paused.", q, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.size, c.byState, c.latency, c.processed, c.failed, c.paused, c.oldestAge, c.unauthorized, c.backlog, c.failedMsgs} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.collectOutbound(ch)
	for _, q := range []string{queues.Outbound, queues.Inbound, queues.Reconcile} {
		info, err := c.insp.GetQueueInfo(q)
		if err != nil {
			// A queue that never had a task does not exist yet: report zeros.
			info = &asynq.QueueInfo{Queue: q}
		}
		ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(info.Size), q)
		for state, n := range map[string]int{
			"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived, "completed": info.Completed,
		} {
			ch <- prometheus.MustNewConstMetric(c.byState, prometheus.GaugeValue, float64(n), q, state)
		}
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, info.Latency.Seconds(), q)
		ch <- prometheus.MustNewConstMetric(c.processed, prometheus.CounterValue, float64(info.ProcessedTotal), q)
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(info.FailedTotal), q)
		paused := 0.0
		if info.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused, q)
	}
}

// collectOutbound reports, for each account, the age of the oldest
// outbound message not yet delivered or failed, the backlog, the failed
// messages and the credentials' state; a Redis error leaves the account's
// gauges out of this scrape (logged) rather than reporting a false 0.
func (c *queueCollector) collectOutbound(ch chan<- prometheus.Metric) {
	if c.outbound == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for name, out := range c.outbound() {
		sum, err := out.Summary(ctx)
		if err != nil {
			c.log.Warn().Err(err).Str("account", name).Msg("metrics: cannot read the account's outbound state")
			continue
		}
		age := 0.0
		if !sum.Oldest.IsZero() {
			age = max(c.now().Sub(sum.Oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(c.oldestAge, prometheus.GaugeValue, age, name)
		ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(sum.Backlog), name)
		ch <- prometheus.MustNewConstMetric(c.failedMsgs, prometheus.GaugeValue, float64(sum.Failed), name)
		bad := map[bool]float64{true: 1}[sum.Credentials == relay.CredentialsUnauthorized]
		ch <- prometheus.MustNewConstMetric(c.unauthorized, prometheus.GaugeValue, bad, name)
	}
}

// reconcileIntervalGauge is deskrelay_reconcile_interval_seconds, the
// schedule's interval (0: off), so that an alert can compare
// deskrelay_reconcile_checkpoint_age_seconds with it (deploy/prometheus).
func reconcileIntervalGauge(interval time.Duration) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "deskrelay_reconcile_interval_seconds",
		Help: "The reconciler's schedule interval (DESKRELAY_RECONCILE_INTERVAL; 0 when the schedule is off).",
	})
	g.Set(interval.Seconds())
	return g
}
