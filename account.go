package main

import (
	"context"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/internal/zdoauth"
	"github.com/deskrelay/deskrelay/reconcile"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk"
)

// account is one Zendesk account's share of deskrelay: its credentials,
// budget, relay and reconciler, each on the account's own Redis keys
// (keys.For(name)), and the handlers of its tasks. Accounts share the
// parts (Redis, asynq, the HTTP transport, inbound's receiver).
type account struct {
	cfg        accountConfig
	space      keys.Space
	log        zerolog.Logger
	limiter    *budget.Limiter
	oauth      *zdoauth.Source // nil unless OAuth with refresh
	zd         *zendesk.Client
	relay      *relay.Relay
	reconciler *reconcile.Reconciler // nil when inbound is off
	mux        *asynq.ServeMux
}

func (a *account) name() string { return a.cfg.name }

func (a *account) close() {
	if a.reconciler != nil {
		_ = a.reconciler.Close()
	}
	if a.relay != nil {
		_ = a.relay.Close()
	}
}

// closeReplaced closes an account whose changed configuration a reload
// replaced by a new instance of the same name: the reconciler leaves the
// shared collectors (only if they still hold this instance); the relay is not
// closed, since Close would delete the account's series that the new
// instance now carries, and a relay on the shared asynq client and
// inspector holds nothing else to release.
func (a *account) closeReplaced() {
	if a.reconciler != nil {
		_ = a.reconciler.Close()
	}
}

// accountSet is the accounts served, in the configuration's order.
type accountSet struct {
	list   []*account
	byName map[string]*account
}

// names are the accounts' names in order.
func (s *accountSet) names() []string {
	out := make([]string, len(s.list))
	for i, a := range s.list {
		out[i] = a.name()
	}
	return out
}

// reconcilers are the accounts' reconcilers (none when inbound is off).
func (s *accountSet) reconcilers() []*reconcile.Reconciler {
	var out []*reconcile.Reconciler
	for _, a := range s.list {
		if a.reconciler != nil {
			out = append(out, a.reconciler)
		}
	}
	return out
}

// buildAccounts wires cfg's accounts. An account of prev whose
// configuration did not change is kept as it is (a reload); the others are
// built anew. The receiver learns the new list before the reconcilers are
// built, since each publishes through its account's publisher.
func (p *parts) buildAccounts(ctx context.Context, cfg *config, prev *accountSet, log zerolog.Logger, metrics prometheus.Registerer) (*accountSet, error) {
	set := &accountSet{byName: make(map[string]*account, len(cfg.accounts))}
	var fresh []*account
	for _, ac := range cfg.accounts {
		if old := prev.get(ac.name); old != nil && old.cfg.fingerprint == ac.fingerprint {
			set.add(old)
			continue
		}
		a, err := p.buildAccount(ctx, cfg, ac, log, metrics)
		if err != nil {
			closeAll(fresh)
			return nil, err
		}
		set.add(a)
		fresh = append(fresh, a)
	}
	if err := p.joinReceiver(set); err != nil {
		closeAll(fresh)
		return nil, err
	}
	for _, a := range fresh {
		if err := p.buildReconciler(cfg, a, log, metrics); err != nil {
			closeAll(fresh)
			if prev != nil { // a reload: the receiver goes back to the running accounts
				_ = p.joinReceiver(prev)
			}
			return nil, err
		}
		p.register(a)
	}
	return set, nil
}

func (s *accountSet) add(a *account) {
	s.list = append(s.list, a)
	s.byName[a.name()] = a
}

// get returns the account named name; s may be nil.
func (s *accountSet) get(name string) *account {
	if s == nil {
		return nil
	}
	return s.byName[name]
}

func closeAll(as []*account) {
	for _, a := range as {
		a.close()
	}
}

// buildAccount wires one account: its budget, Zendesk client (with OAuth,
// its token source) and relay. Errors name the account.
func (p *parts) buildAccount(ctx context.Context, cfg *config, ac accountConfig, log zerolog.Logger, metrics prometheus.Registerer) (*account, error) {
	// The flows name the account in their logs themselves; a.log is for
	// what main logs of the account (and OAuth's).
	a := &account{cfg: ac, space: keys.For(ac.name), log: log.With().Str("account", ac.name).Logger()}
	p.remember(ctx, ac.name)
	a.limiter = budget.New(p.rdb, budget.Config{Space: a.space, Rate: ac.rateLimit, UpdateRate: ac.updateRateLimit})
	if err := p.buildZendesk(ctx, a, metrics); err != nil {
		return nil, accountError(ac.name, err)
	}
	outcomes, err := p.outcomeSink(cfg, a.space)
	if err != nil {
		return nil, err
	}
	a.relay, err = relay.New(cfg.relayConfig(), relay.Deps{
		Redis:     p.rdb,
		Asynq:     cfg.redis,
		Client:    p.client,
		Inspector: p.insp,
		Space:     a.space,
		Zendesk:   a.zd,
		Limiter:   a.limiter,
		Log:       log.With().Str("component", "relay").Logger(),
		Metrics:   metrics,
		Outcomes:  outcomes,
	})
	if err != nil {
		return nil, settingsError(err)
	}
	return a, nil
}

// accountError names the account in a problem of its settings, unless it
// is the account default of the DESKRELAY_ZENDESK_* settings (whose
// problems already name the setting).
func accountError(name string, err error) error {
	if name == keys.DefaultAccount || err == nil {
		return settingsError(err)
	}
	var p problems
	p.add("account "+name, "%v", err)
	return p.err()
}

// buildZendesk makes the account's Zendesk client, its responses observed
// by the account's budget, and with OAuth its token source.
func (p *parts) buildZendesk(ctx context.Context, a *account, metrics prometheus.Registerer) error {
	zcfg := a.cfg.zendesk
	zcfg.OnResponse = a.limiter.Observe
	zcfg.Transport = p.transport
	if o := a.cfg.oauth; o.set() {
		src, err := zdoauth.New(zdoauth.Config{
			BaseURL:      zcfg.BaseURL,
			Subdomain:    zcfg.Subdomain,
			ClientID:     o.clientID,
			ClientSecret: o.clientSecret,
			RefreshToken: o.refreshToken,
			Account:      a.name(),
			Metrics:      metrics,
		}, p.rdb, a.log.With().Str("component", "oauth").Logger())
		if err != nil {
			return err
		}
		a.oauth = src
		zcfg.TokenSource = src
		if ctx != nil {
			// Apply a newly configured refresh token now, so that e.g. a
			// replay right after fixing the token uses it.
			if err := src.Init(ctx); err != nil {
				a.log.Error().Err(err).Msg("OAuth: the configured refresh token could not be applied yet")
			}
		}
	}
	zd, err := zendesk.New(zcfg)
	if err != nil {
		return err
	}
	a.zd = zd
	return nil
}

// outcomeSink is where an account's relay tells the messages' outcomes: the
// sink, unless there is none (inbound off) or DESKRELAY_SINK_OUTCOMES is none.
func (p *parts) outcomeSink(cfg *config, space keys.Space) (relay.OutcomeSink, error) {
	if cfg.sinkURL == "" || cfg.sinkOutcomes == sink.SendNone {
		return nil, nil
	}
	oc := cfg.outcomesConfig()
	oc.Space, oc.Asynq = space, p.client
	o, err := sink.NewOutcomes(p.rdb, oc)
	if err != nil {
		return nil, settingsError(err)
	}
	return o, nil
}

// joinReceiver gives inbound's receiver the accounts' webhooks and targets.
// An account kept by a reload passes the same objects, so the receiver
// keeps its state (a secret read from Zendesk).
func (p *parts) joinReceiver(set *accountSet) error {
	if p.receiver == nil {
		return nil
	}
	specs := make([]inbound.Account, 0, len(set.list))
	for _, a := range set.list {
		specs = append(specs, inbound.Account{
			Name:           a.name(),
			WebhookSecret:  a.cfg.webhookSecret,
			WebhookID:      a.cfg.webhookID, // without a secret, Run reads it from Zendesk in the background
			TargetUser:     a.cfg.targetUser,
			TargetPassword: a.cfg.targetPassword,
			Zendesk:        a.zd,
			Limiter:        a.limiter,
			Tickets:        a.relay.Tickets(),
		})
	}
	return p.receiver.SetAccounts(specs)
}

// buildReconciler makes the account's reconciler (backfill from Zendesk's
// exports and the guardian of its webhook or target), publishing through
// the account's publisher. Without inbound there is none.
func (p *parts) buildReconciler(cfg *config, a *account, log zerolog.Logger, metrics prometheus.Registerer) error {
	if p.receiver == nil {
		return nil
	}
	rc := cfg.reconcileConfig()
	rc.WebhookID, rc.TargetID = a.cfg.webhookID, a.cfg.targetID
	var err error
	a.reconciler, err = reconcile.New(rc, reconcile.Deps{
		Space:     a.space,
		Redis:     p.rdb,
		Asynq:     p.client,
		Zendesk:   a.zd,
		Publisher: p.receiver.Publisher(a.name()),
		Tickets:   a.relay.Tickets(),
		Limiter:   a.limiter,
		Receiver:  receiverHealth{rdb: p.rdb, rcv: p.receiver, space: a.space},
		Log:       log, // the reconciler adds component=reconcile and the account itself
		Metrics:   metrics,
	})
	return err
}

// register puts the account's task handlers on its mux: its relay's and
// reconciler's, and inbound's (which find the account in the payload).
func (p *parts) register(a *account) {
	a.mux = asynq.NewServeMux()
	a.relay.Register(a.mux)
	if p.receiver != nil {
		p.receiver.Register(a.mux)
	}
	if a.reconciler != nil {
		a.reconciler.Register(a.mux)
	}
}
