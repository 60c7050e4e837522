package inbound

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deskrelay/deskrelay/internal/promx"
)

type metrics struct {
	webhooks   *prometheus.CounterVec // outcome: accepted, spooled, duplicate, ignored
	rejected   *prometheus.CounterVec // reason: unknown_account, signature, timestamp, unsigned, too_large, slow_body, busy, malformed, unavailable, waiting_for_secret
	spoolFiles prometheus.Gauge
	spoolStuck prometheus.Gauge
	// receiverState is 1 for each account's receiver's current state (on,
	// waiting_for_secret, off), 0 for the others.
	receiverState *prometheus.GaugeVec
	events        *prometheus.CounterVec // result: enqueued, duplicate, skipped; reason
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_inbound_webhooks_accepted_total",
			Help: "Zendesk webhook and target requests answered 2xx, by outcome (accepted into Redis, spooled, duplicate invocation, ignored event type).",
		}, []string{"outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_inbound_webhooks_rejected_total",
			Help: "Zendesk webhook and target requests rejected, by reason: unknown_account (no such account configured), signature and timestamp (signed for this webhook, did not verify), unsigned (no signature headers, a timestamp outside the window, or another webhook's id: anyone can send these, they block nothing), too_large, slow_body, busy (body memory budget), malformed, unavailable, waiting_for_secret.",
		}, []string{"reason"}),
		spoolFiles: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deskrelay_inbound_spool_pending",
			Help: "Webhook requests waiting in the local spool for Redis.",
		}),
		spoolStuck: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deskrelay_inbound_spool_stuck",
			Help: "1 while the spool mover fails to move spooled webhook requests into Redis (see /v1/status inbound.spool.stuck).",
		}),
		receiverState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "deskrelay_webhook_receiver_state",
			Help: "1 for each account's webhook receiver's current state: on, waiting_for_secret (reading the signing secret from Zendesk; webhooks answered 503) or off.",
		}, []string{"account", "state"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_inbound_events_total",
			Help: "Events derived from webhooks, by publish result (enqueued, duplicate, skipped) and reason.",
		}, []string{"result", "reason"}),
	}
	if reg != nil {
		m.webhooks, _ = promx.Register(reg, m.webhooks)
		m.rejected, _ = promx.Register(reg, m.rejected)
		m.spoolFiles, _ = promx.Register(reg, m.spoolFiles)
		m.spoolStuck, _ = promx.Register(reg, m.spoolStuck)
		m.receiverState, _ = promx.Register(reg, m.receiverState)
		m.events, _ = promx.Register(reg, m.events)
	}
	return m
}

// forget drops the series of a removed account.
func (m *metrics) forget(account string) {
	m.receiverState.DeletePartialMatch(prometheus.Labels{"account": account})
}
