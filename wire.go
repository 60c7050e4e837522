package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/schema"
	"github.com/deskrelay/deskrelay/internal/zdoauth"
	"github.com/deskrelay/deskrelay/reconcile"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk"
)

// parts are deskrelay's components wired from one config. serve runs them;
// the one-shot commands (reconcile, replay, webhook) use the ones they need.
type parts struct {
	rdb        redis.UniversalClient
	limiter    *budget.Limiter
	oauth      *zdoauth.Source // nil unless OAuth with refresh
	zd         *zendesk.Client
	relay      *relay.Relay
	receiver   *inbound.Receiver // nil when inbound is off (no DESKRELAY_SINK_URL)
	secret     string            // the webhook signing secret in use; "" turns the webhook route off
	reconciler *reconcile.Reconciler
	// layoutPending: Redis did not answer at start, so the key layout is
	// still to be checked (awaitKeyLayout).
	layoutPending bool
}

// build wires every component. metrics may be nil (one-shot commands).
func build(ctx context.Context, cfg *config, log zerolog.Logger, metrics prometheus.Registerer) (*parts, error) {
	rdb, ok := cfg.redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("DESKRELAY_REDIS_URL: unsupported connection kind")
	}
	p := &parts{rdb: rdb}
	if ctx != nil {
		if err := p.migrateKeys(ctx, log); err != nil {
			p.close()
			return nil, err
		}
	}
	p.limiter = budget.NewLimiter(rdb, cfg.rateLimit)

	zcfg := cfg.zendesk
	zcfg.OnResponse = p.limiter.Observe
	if cfg.oauth.set() {
		src, err := zdoauth.New(zdoauth.Config{
			BaseURL:      cfg.zendesk.BaseURL,
			Subdomain:    cfg.zendesk.Subdomain,
			ClientID:     cfg.oauth.clientID,
			ClientSecret: cfg.oauth.clientSecret,
			RefreshToken: cfg.oauth.refreshToken,
			Metrics:      metrics,
		}, rdb, log.With().Str("component", "oauth").Logger())
		if err != nil {
			p.close()
			return nil, err
		}
		p.oauth = src
		zcfg.TokenSource = src
		if ctx != nil {
			// Apply a newly configured refresh token now, so that e.g. a
			// replay right after fixing the token uses it.
			if err := src.Init(ctx); err != nil {
				log.Error().Err(err).Msg("OAuth: the configured refresh token could not be applied yet")
			}
		}
	}
	zd, err := zendesk.New(zcfg)
	if err != nil {
		p.close()
		return nil, err
	}
	p.zd = zd

	if err := (queues.Policy{MaxDelay: cfg.retryMaxDelay}).Validate(); err != nil {
		p.close()
		return nil, err
	}
	p.relay, err = relay.New(relay.Config{
		OrderGapTimeout:   cfg.orderGapTimeout,
		Retention:         cfg.retention,
		RateLimit:         cfg.rateLimit,
		GateProbeInterval: cfg.tuning.gateProbe,
		AutoReplay:        cfg.autoReplay,
	}, relay.Deps{
		Redis:   rdb,
		Asynq:   cfg.redis,
		Zendesk: zd,
		Limiter: p.limiter,
		Log:     log.With().Str("component", "relay").Logger(),
		Metrics: metrics,
	})
	if err != nil {
		p.close()
		return nil, err
	}

	secret := cfg.webhookSecret
	if secret == "" && cfg.webhookID != "" && ctx != nil {
		// DESIGN.md: read the signing secret from Zendesk when unset and the webhook id is known.
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		s, err := zd.WebhookSigningSecret(sctx, cfg.webhookID)
		cancel()
		if err != nil {
			log.Error().Err(err).Str("webhook_id", cfg.webhookID).
				Msg("could not read the webhook's signing secret from Zendesk; the webhook receiver stays off until DESKRELAY_WEBHOOK_SECRET is set or Zendesk answers at the next start")
		} else {
			secret = s
		}
	}
	var pub reconcile.Publisher
	if cfg.sinkURL != "" {
		p.receiver, err = inbound.New(inbound.Config{
			SinkURL:        cfg.sinkURL,
			SinkSecret:     cfg.sinkSecret,
			WebhookSecret:  secret,
			ForwardPrivate: cfg.forwardPrivate,
			SpoolDir:       cfg.spoolDir,
		}, inbound.Deps{
			Redis:   rdb,
			Tickets: p.relay.Tickets(),
			Zendesk: zd,
			Limiter: p.limiter,
			Log:     log.With().Str("component", "inbound").Logger(),
			Metrics: metrics,
		})
		if err != nil {
			p.close()
			return nil, err
		}
		pub = p.receiver.Publisher()
		p.secret = secret
	}

	if pub != nil {
		p.reconciler, err = reconcile.New(reconcile.Config{
			Interval:        cfg.reconcileInterval,
			Lag:             cfg.tuning.reconcileLag,
			ExportWindow:    cfg.tuning.exportWindow,
			InitialLookback: cfg.tuning.initialLookback,
			WebhookID:       cfg.webhookID,
			TargetID:        cfg.targetID,
			PublicURL:       cfg.publicURL,
		}, reconcile.Deps{
			Redis:     rdb,
			Zendesk:   zd,
			Publisher: pub,
			Tickets:   p.relay.Tickets(),
			Limiter:   p.limiter,
			Receiver:  receiverHealth{rdb: rdb},
			Log:       log.With().Str("component", "reconcile").Logger(),
			Metrics:   metrics,
		})
		if err != nil {
			p.close()
			return nil, err
		}
	}
	return p, nil
}

// register puts every task handler on mux.
func (p *parts) register(mux *asynq.ServeMux) {
	p.relay.Register(mux)
	if p.receiver != nil {
		p.receiver.Register(mux)
	}
	if p.reconciler != nil {
		p.reconciler.Register(mux)
	}
}

// migrateKeys brings data of an earlier release to this release's key
// layout (internal/schema). While Redis does not answer, it leaves that to
// awaitKeyLayout (serve runs it in the background) and says so.
func (p *parts) migrateKeys(ctx context.Context, log zerolog.Logger) error {
	mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rep, err := schema.Migrate(mctx, p.rdb)
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded) {
		p.layoutPending = true
		log.Warn().Err(err).Msg("Redis is unreachable: the key layout is checked when it answers")
		return nil
	}
	if err != nil {
		return err
	}
	logMigration(log, rep)
	return nil
}

// awaitKeyLayout retries the key migration every 2s until Redis answers.
func (p *parts) awaitKeyLayout(ctx context.Context, log zerolog.Logger) error {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for p.layoutPending {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		rep, err := schema.Migrate(ctx, p.rdb)
		if err == nil {
			p.layoutPending = false
			logMigration(log, rep)
		}
	}
	return nil
}

func logMigration(log zerolog.Logger, rep schema.Report) {
	if rep.Renamed > 0 || rep.From != rep.To {
		log.Info().Int("from_layout", rep.From).Int("to_layout", rep.To).Int("keys_moved", rep.Renamed).
			Msg("Redis keys moved to this release's layout")
	}
	if len(rep.Skipped) > 0 {
		log.Warn().Strs("keys", rep.Skipped).Msg("old keys left in place: their new names were already taken")
	}
}

func (p *parts) close() {
	if p.reconciler != nil {
		_ = p.reconciler.Close()
	}
	if p.relay != nil {
		_ = p.relay.Close()
	}
	if p.rdb != nil {
		_ = p.rdb.Close()
	}
}

// receiverHealth tells the guardian how deskrelay's own receiver is doing,
// from what every replica records in Redis.
type receiverHealth struct{ rdb redis.UniversalClient }

func (h receiverHealth) LastReceived(ctx context.Context) (time.Time, error) {
	at, _, err := inbound.LastWebhookAt(ctx, h.rdb)
	return at, err
}

func (h receiverHealth) SignatureFailures(ctx context.Context) (int, error) {
	s, err := inbound.ReadSignatureFailures(ctx, h.rdb)
	return int(s.Run), err
}
