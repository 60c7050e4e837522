package zdoauth

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deskrelay/deskrelay/internal/promx"
)

type metrics struct {
	refreshes *prometheus.CounterVec // by outcome
	waits     prometheus.Counter
	expiry    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, account string) *metrics {
	labels := prometheus.Labels{"account": account}
	m := &metrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "deskrelay_zendesk_oauth_refreshes_total",
			Help:        "Zendesk OAuth access token refreshes this process made, by outcome (ok, unauthorized, temporary, rate_limited).",
			ConstLabels: labels,
		}, []string{"outcome"}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "deskrelay_zendesk_oauth_refresh_waits_total",
			Help:        "Times this process waited for another replica's Zendesk OAuth refresh instead of refreshing itself.",
			ConstLabels: labels,
		}),
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "deskrelay_zendesk_oauth_access_token_expiry_timestamp_seconds",
			Help:        "When the Zendesk OAuth access token last seen by this process expires (unix seconds; 0 when unknown).",
			ConstLabels: labels,
		}),
	}
	for _, o := range []string{outcomeOK, outcomeUnauthorized, outcomeTemporary, outcomeRateLimited} {
		m.refreshes.WithLabelValues(o)
	}
	if reg != nil {
		m.refreshes, _ = promx.Register(reg, m.refreshes)
		m.waits, _ = promx.Register(reg, m.waits)
		m.expiry, _ = promx.Register(reg, m.expiry)
	}
	return m
}
