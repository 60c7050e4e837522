package relay

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
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
