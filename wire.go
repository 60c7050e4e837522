package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/schema"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/internal/tickets"
	"github.com/deskrelay/deskrelay/reconcile"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk"
)

// parts are deskrelay's components wired from one config. serve runs them;
// the one-shot commands (reconcile, replay, webhook, accounts) use the ones
// they need. What is per Zendesk account lives in an account (account.go);
// the parts hold what every account shares.
type parts struct {
	rdb       redis.UniversalClient
	client    *asynq.Client     // shared by every account's flows
	insp      *asynq.Inspector  // shared by every account's flows
	transport http.RoundTripper // shared by every account's Zendesk client
	receiver  *inbound.Receiver // nil when inbound is off (no DESKRELAY_SINK_URL)
	// accounts are the accounts served now (replaced by a reload: use
	// accountSet); dispatch runs each task on its account's handlers.
	accounts atomic.Pointer[accountSet]
	dispatch dispatcher
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
// the key layout, what the accounts share (asynq client and inspector, the
// HTTP transport to Zendesk, inbound's receiver when there is a sink), then
// each account.
func (p *parts) wire(ctx context.Context, cfg *config, log zerolog.Logger, metrics prometheus.Registerer) error {
	if ctx != nil {
		if err := p.migrateKeys(ctx, log); err != nil {
			return err
		}
	}
	p.client = asynq.NewClientFromRedisClient(p.rdb)
	p.insp = asynq.NewInspectorFromRedisClient(p.rdb)
	p.transport = zendesk.NewTransport(zendeskConns(cfg.concurrency))
	if cfg.sinkURL != "" {
		if err := p.buildInbound(cfg, log, metrics); err != nil {
			return err
		}
	}
	set, err := p.buildAccounts(ctx, cfg, nil, log, metrics)
	if err != nil {
		return err
	}
	p.use(set)
	return nil
}

// zendeskConns is how many idle connections to one Zendesk the shared
// transport keeps: one for each worker, and room for the webhook path's
// reads and the reconciler.
func zendeskConns(concurrency int) int { return concurrency + 8 }

// buildInbound makes the receiver of Zendesk's webhooks and targets
// (Zendesk to the sink): the process-wide part; the accounts join it in
// buildAccounts.
func (p *parts) buildInbound(cfg *config, log zerolog.Logger, metrics prometheus.Registerer) error {
	var err error
	p.receiver, err = inbound.New(cfg.inboundConfig(metrics == nil), inbound.Deps{
		Redis:     p.rdb,
		Tickets:   tickets.New(p.rdb).WithRetention(cfg.retention),
		Asynq:     p.client,
		Inspector: p.insp,
		Log:       log.With().Str("component", "inbound").Logger(),
		Metrics:   metrics,
	})
	return err
}

// use makes set the accounts served: their handlers run the tasks.
func (p *parts) use(set *accountSet) {
	p.accounts.Store(set)
	muxes := make(map[string]*asynq.ServeMux, len(set.list))
	for _, a := range set.list {
		muxes[a.name()] = a.mux
	}
	p.dispatch.set(muxes)
}

// accountSet returns the accounts served now (never nil after build).
func (p *parts) accountSet() *accountSet {
	if s := p.accounts.Load(); s != nil {
		return s
	}
	return &accountSet{}
}

// account returns the account served under name, or nil.
func (p *parts) account(name string) *account { return p.accountSet().byName[name] }

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
			Int("queued_messages_indexed", rep.Indexed).
			Msg("Redis keys moved to this release's layout")
	}
	if len(rep.Skipped) > 0 {
		log.Warn().Strs("keys", rep.Skipped).Msg("old keys left in place: their new names were already taken")
	}
}

func (p *parts) close() {
	for _, a := range p.accountSet().list {
		a.close()
	}
	if p.receiver != nil {
		_ = p.receiver.Close()
	}
	if p.insp != nil {
		_ = p.insp.Close()
	}
	if p.client != nil {
		_ = p.client.Close()
	}
	if p.rdb != nil {
		_ = p.rdb.Close()
	}
}

// receiverHealth tells an account's guardian how deskrelay's own receiver
// is doing for the account, from what every replica records in Redis.
type receiverHealth struct {
	rdb   redis.UniversalClient
	rcv   *inbound.Receiver
	space keys.Space
}

// RefreshSecret reads the webhook's signing secret from Zendesk again, when
// the guardian sees Zendesk's calls failing verification.
func (h receiverHealth) RefreshSecret(ctx context.Context) error {
	return h.rcv.RefreshSecret(ctx, h.space.Account())
}

func (h receiverHealth) LastReceived(ctx context.Context) (time.Time, error) {
	at, _, err := inbound.LastWebhookAt(ctx, h.rdb, h.space)
	return at, err
}

func (h receiverHealth) SignatureFailures(ctx context.Context) (int, error) {
	s, err := inbound.ReadSignatureFailures(ctx, h.rdb, h.space)
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
		PublicURL:       c.publicURL,

		WebhookAutoEnable: c.webhookAutoEnable,
	}
}
