package sink

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/deskrelay/deskrelay/internal/promx"
)

// DeliverConfig configures a Deliverer. inbound.Config holds the settings
// and fills it.
type DeliverConfig struct {
	// URL is the platform's sink endpoint (DESKRELAY_SINK_URL). Required.
	URL string
	// Secret signs deliveries with Standard Webhooks
	// (DESKRELAY_SINK_SECRET): "whsec_" + base64. Required.
	Secret string
	// OrderSettle is how long a new event waits before delivery, so that
	// events of one conversation arriving close together go out in
	// occurred_at order. Zero: no wait.
	OrderSettle time.Duration
	// OrderPoll is how long an event waits before it looks again whether
	// its conversation's earlier events are done. Default 1s.
	OrderPoll time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Inspector, when set, is shared with other components and not
	// closed; nil: the Deliverer makes its own on the Redis client.
	Inspector *asynq.Inspector
}

// Publishers finds the Publisher of an account by name (the account's
// keys: ledger, order, archive, last statuses); false when the account is
// not configured.
type Publishers func(account string) (*Publisher, bool)

// Deliverer runs TaskDeliver tasks of every account (one sink, one HTTP
// client): it POSTs each event to the sink, signed with Standard Webhooks,
// in occurred_at order per conversation; a sink that refuses for good (401,
// 403, 410) fails the event into the account's archive, kept for Replay.
// Safe for concurrent use.
type Deliverer struct {
	cfg        DeliverConfig
	rdb        redis.UniversalClient
	insp       *asynq.Inspector
	publishers Publishers
	signer     *standardwebhooks.Webhook
	http       *http.Client
	log        zerolog.Logger
	deliveries *prometheus.CounterVec // account; outcome: delivered, retry, wait, failed, dropped
}

// NewDeliverer returns the TaskDeliver handler. pubs finds the Publisher of
// a task's account, whose ledger, order and status record the delivery
// updates; hc is the HTTP client (its redirects are not followed); reg may
// be nil.
func NewDeliverer(cfg DeliverConfig, rdb redis.UniversalClient, pubs Publishers, hc *http.Client, log zerolog.Logger, reg prometheus.Registerer) (*Deliverer, error) {
	if cfg.OrderPoll <= 0 {
		cfg.OrderPoll = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	signer, err := newSigner(cfg.Secret)
	if err != nil {
		return nil, errors.New("DESKRELAY_SINK_SECRET: the part after whsec_ is not base64")
	}
	d := &Deliverer{
		cfg:        cfg,
		rdb:        rdb,
		insp:       cfg.Inspector,
		publishers: pubs,
		signer:     signer,
		http:       hc,
		log:        log,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskrelay_inbound_sink_deliveries_total",
			Help: "Sink delivery attempts by account and outcome (delivered, retry, wait, failed, dropped: a status change that is no longer news).",
		}, []string{"account", "outcome"}),
	}
	if d.insp == nil {
		d.insp = asynq.NewInspectorFromRedisClient(rdb)
	}
	if reg != nil {
		d.deliveries, _ = promx.Register(reg, d.deliveries)
	}
	return d, nil
}

// CheckSecret says whether secret can sign deliveries (for configuration
// checks).
func CheckSecret(secret string) error {
	_, err := newSigner(secret)
	return err
}

func newSigner(secret string) (*standardwebhooks.Webhook, error) {
	key := strings.TrimPrefix(secret, "whsec_")
	if key == "" {
		return nil, errors.New("empty key")
	}
	return standardwebhooks.NewWebhook(secret)
}
