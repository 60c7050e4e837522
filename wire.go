package main

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/schema"
	"github.com/deskrelay/deskrelay/internal/sink"
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
	reconciler *reconcile.Reconciler
	// layoutPending: Redis did not answer at start, so the key layout is
	// still to be checked (awaitKeyLayout).
	layoutPending bool
}

// build wires every component. metrics may be nil (one-shot commands).
// ctx may be nil: then nothing is asked of Redis or Zendesk while wiring.
func build(ctx context.Context, cfg *config, log zerolog.Logger, metrics prometheus.Registerer) (*parts, error) {
	rdb, ok := cfg.redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		var p problems
		p.add("DESKRELAY_REDIS_URL", "unsupported connection kind")
		return nil, p.err()
	}
	p := &parts{rdb: rdb}
	if err := p.wire(ctx, cfg, log, metrics); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// wire builds the components in order, each step on the ones before it:
// the key layout, the Zendesk budget, the Zendesk client, the relay, then,
// when there is a sink, inbound and the reconciler.
func (p *parts) wire(ctx context.Context, cfg *config, log zerolog.Logger, metrics prometheus.Registerer) error {
	if ctx != nil {
		if err := p.migrateKeys(ctx, log); err != nil {
			return err
		}
	}
	p.limiter = budget.New(p.rdb, budget.Config{Rate: cfg.rateLimit, UpdateRate: cfg.updateRateLimit})
	if err := p.buildZendesk(ctx, cfg, log, metrics); err != nil {
		return err
	}
	if err := p.buildRelay(cfg, log, metrics); err != nil {
		return err
	}
	if cfg.sinkURL == "" {
		return nil // inbound is off, and the reconciler has nowhere to publish
	}
	if err := p.buildInbound(cfg, log, metrics); err != nil {
		return err
	}
	return p.buildReconciler(cfg, log, metrics)
}

// buildZendesk makes the Zendesk client, its responses observed by the
// budget, and with OAuth its token source.
func (p *parts) buildZendesk(ctx context.Context, cfg *config, log zerolog.Logger, metrics prometheus.Registerer) error {
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
		}, p.rdb, log.With().Str("component", "oauth").Logger())
		if err != nil {
			return err
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
		return settingsError(err)
	}
	p.zd = zd
	return nil
}

// buildRelay makes the relay (messages to Zendesk).
func (p *parts) buildRelay(cfg *config, log zerolog.Logger, metrics prometheus.Registerer) error {
	outcomes, err := p.outcomeSink(cfg)
	if err != nil {
		return err
	}
	p.relay, err = relay.New(cfg.relayConfig(), relay.Deps{
		Redis:   p.rdb,
		Asynq:   cfg.redis,
		Zendesk: p.zd,
		Limiter: p.limiter,
		Log:     log.With().Str("component", "relay").Logger(),
		Metrics: metrics,

		Outcomes: outcomes,
	})
	return settingsError(err)
}

// outcomeSink is where the relay tells the messages' outcomes: the sink,
// unless there is none (inbound off) or DESKRELAY_SINK_OUTCOMES is none.
func (p *parts) outcomeSink(cfg *config) (relay.OutcomeSink, error) {
	if cfg.sinkURL == "" || cfg.sinkOutcomes == sink.SendNone {
		return nil, nil
	}
	o, err := sink.NewOutcomes(p.rdb, cfg.outcomesConfig())
	if err != nil {
		return nil, settingsError(err)
	}
	return o, nil
}

// buildInbound makes the receiver of Zendesk's webhook and target (Zendesk
// to the sink). Without a configured signing secret, the receiver reads it
// from Zendesk in the background (inbound.Receiver.Run).
func (p *parts) buildInbound(cfg *config, log zerolog.Logger, metrics prometheus.Registerer) error {
	var err error
	p.receiver, err = inbound.New(cfg.inboundConfig(metrics == nil), inbound.Deps{
		Redis:   p.rdb,
		Tickets: p.relay.Tickets(),
		Log:     log.With().Str("component", "inbound").Logger(),
		Metrics: metrics,
	})
	if err != nil {
		return err
	}
	return p.receiver.SetAccounts([]inbound.Account{{
		Name:           keys.DefaultAccount,
		WebhookSecret:  cfg.webhookSecret,
		WebhookID:      cfg.webhookID, // without a secret, Run reads it from Zendesk in the background
		TargetUser:     cfg.targetUser,
		TargetPassword: cfg.targetPassword,
		Zendesk:        p.zd,
		Limiter:        p.limiter,
	}})
}

// buildReconciler makes the reconciler (backfill from Zendesk's exports and
// the guardian of the webhook and target), publishing through inbound.
func (p *parts) buildReconciler(cfg *config, log zerolog.Logger, metrics prometheus.Registerer) error {
	var err error
	p.reconciler, err = reconcile.New(cfg.reconcileConfig(), reconcile.Deps{
		Redis:     p.rdb,
		Zendesk:   p.zd,
		Publisher: p.receiver.Publisher(keys.DefaultAccount),
		Tickets:   p.relay.Tickets(),
		Limiter:   p.limiter,
		Receiver:  receiverHealth{rdb: p.rdb, rcv: p.receiver},
		Log:       log, // the reconciler adds component=reconcile itself
		Metrics:   metrics,
	})
	return err
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
	if p.receiver != nil {
		_ = p.receiver.Close()
	}
	if p.rdb != nil {
		_ = p.rdb.Close()
	}
}

// receiverHealth tells the guardian how deskrelay's own receiver is doing,
// from what every replica records in Redis.
type receiverHealth struct {
	rdb redis.UniversalClient
	rcv *inbound.Receiver
}

// RefreshSecret reads the webhook's signing secret from Zendesk again, when
// the guardian sees Zendesk's calls failing verification.
func (h receiverHealth) RefreshSecret(ctx context.Context) error {
	return h.rcv.RefreshSecret(ctx, keys.DefaultAccount)
}

func (h receiverHealth) LastReceived(ctx context.Context) (time.Time, error) {
	at, _, err := inbound.LastWebhookAt(ctx, h.rdb, keys.Default)
	return at, err
}

func (h receiverHealth) SignatureFailures(ctx context.Context) (int, error) {
	s, err := inbound.ReadSignatureFailures(ctx, h.rdb, keys.Default)
	return int(s.Run), err
}

// relayConfig, inboundConfig and reconcileConfig fill each package's Config
// from the settings; the packages validate their own fields.
func (c *config) relayConfig() relay.Config {
	return relay.Config{
		OrderGapTimeout:   c.orderGapTimeout,
		Retention:         c.retention,
		GateProbeInterval: c.tuning.gateProbe,
		AutoReplay:        c.autoReplay,
	}
}

func (c *config) outcomesConfig() sink.OutcomesConfig {
	return sink.OutcomesConfig{Send: c.sinkOutcomes}
}

// inboundConfig: oneShot commands open no spool (serve holds its lock).
func (c *config) inboundConfig(oneShot bool) inbound.Config {
	return inbound.Config{
		SinkURL:        c.sinkURL,
		SinkSecret:     c.sinkSecret,
		ForwardPrivate: c.forwardPrivate,
		SpoolDir:       c.spoolDir,
		NoSpool:        oneShot,
	}
}

func (c *config) reconcileConfig() reconcile.Config {
	return reconcile.Config{
		Interval:        c.reconcileInterval,
		Lag:             c.tuning.reconcileLag,
		ExportWindow:    c.tuning.exportWindow,
		InitialLookback: c.tuning.initialLookback,
		WebhookID:       c.webhookID,
		TargetID:        c.targetID,
		PublicURL:       c.publicURL,

		WebhookAutoEnable: c.webhookAutoEnable,
	}
}
