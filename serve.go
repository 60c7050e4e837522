package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/logging"
	"github.com/deskrelay/deskrelay/internal/queues"
)

func cmdServe(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "serve", "serve [flags]", allSettings())
	resolve := fs.settings()
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "unexpected argument %q\nrun 'deskrelay serve -h' for usage\n", fs.Arg(0))
		return exitCode(2)
	}
	v, err := resolve()
	if err != nil {
		return err
	}
	cfg, err := parseConfig(v, needs{zendesk: true, ingest: true})
	if err != nil {
		return err
	}
	log, err := newLogger(env, cfg)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log)
}

// newLogger builds the logger on stderr and routes go-redis's own logger
// (a package variable of go-redis) through it.
func newLogger(env *environment, cfg *config) (zerolog.Logger, error) {
	log, err := logging.New(env.stderr, cfg.logFormat, cfg.logLevel)
	if err != nil {
		return log, err
	}
	redis.SetLogger(logging.NewRedis(log))
	return log, nil
}

// daemon is everything serve runs, wired together.
type daemon struct {
	*parts
	cfg      *config
	log      zerolog.Logger
	metrics  *prometheus.Registry
	asynqSrv *asynq.Server
	working  atomic.Bool // asynq workers are running
	authMode *prometheus.GaugeVec
	// reloaded is signalled after a reload changed the accounts
	// (runSchedule starts the reconcile schedule again with them); reload
	// holds the last reload's outcome for /v1/status (reload.go).
	reloaded chan struct{}
	reload   reloadState
}

// serve runs the daemon until ctx is done, then shuts down in order: stop
// HTTP intake, drain the workers, stop the schedule and the spool mover.
func serve(ctx context.Context, cfg *config, log zerolog.Logger) error {
	d, err := newDaemon(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.close()

	ln := cfg.tuning.listener
	if ln == nil {
		if ln, err = (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.listen); err != nil {
			return fmt.Errorf("DESKRELAY_LISTEN: %w", err)
		}
	}
	metricsSrv, err := d.listenMetrics(ctx)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer metricsSrv.close()
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = d.rdb.Ping(pingCtx).Err()
	cancel()
	if err != nil {
		// Not fatal: intake answers 503, webhooks are spooled, and readyz
		// says why until Redis is back.
		log.Error().Err(err).Msg("Redis is unreachable at start; /readyz will fail until it answers")
	}
	warnRedisSetup(ctx, d.rdb, log)
	d.logStart()

	handler, closeRoutes := d.routes()
	defer closeRoutes()
	httpSrv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	// Background work (spool mover, reconcile schedule) stops
	// last, after intake and workers.
	bg, stopBackground := d.startBackground(ctx)
	defer stopBackground()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		log.Info().Str("addr", ln.Addr().String()).Msg("deskrelay listening")
		if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error { return metricsSrv.serve(d) })
	if err := d.asynqSrv.Start(&d.dispatch); err != nil {
		_ = httpSrv.Close()
		return fmt.Errorf("start workers: %w", err)
	}
	d.working.Store(true)
	g.Go(func() error {
		<-gctx.Done()
		d.shutdown(httpSrv, metricsSrv, bg, stopBackground)
		return nil
	})
	return g.Wait()
}

// startBackground starts the work that runs beside intake and the workers
// (key layout check, spool mover and secret reader, reconcile schedule,
// breaker watch) under one errgroup; stop cancels it.
func (d *daemon) startBackground(ctx context.Context) (bg *errgroup.Group, stop context.CancelFunc) {
	bgCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	bg, bgctx := errgroup.WithContext(bgCtx)
	if d.layoutPending {
		bg.Go(func() error { return ignoreCanceled(d.awaitKeyLayout(bgctx, d.log)) })
	}
	if d.receiver != nil {
		bg.Go(func() error { return ignoreCanceled(d.receiver.Run(bgctx)) })
	}
	if d.receiver != nil && d.cfg.reconcileInterval > 0 {
		bg.Go(func() error { return ignoreCanceled(d.runSchedule(bgctx)) })
	}
	bg.Go(func() error { return ignoreCanceled(d.watchReload(bgctx)) })
	return bg, stop
}

// shutdown stops the parts in order within one DESKRELAY_SHUTDOWN_TIMEOUT:
// HTTP intake, the workers (finishing or handing back their tasks), then
// the background work.
func (d *daemon) shutdown(httpSrv *http.Server, metricsSrv *metricsServer, bg *errgroup.Group, stopBackground context.CancelFunc) {
	log := d.log
	log.Info().Msg("shutting down: stopping intake")
	shutCtx, cancel := context.WithTimeout(context.Background(), d.cfg.shutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutCtx); err != nil {
		log.Warn().Err(err).Msg("http shutdown")
	}
	if err := metricsSrv.shutdown(shutCtx); err != nil {
		log.Warn().Err(err).Msg("metrics shutdown")
	}
	log.Info().Msg("shutting down: draining workers")
	d.working.Store(false)
	d.asynqSrv.Shutdown()
	log.Info().Msg("shutting down: stopping the schedule and the spool mover")
	stopBackground()
	dl, _ := shutCtx.Deadline() // one shutdown timeout for the whole stop
	waitBackground(bg, max(time.Until(dl), time.Second), log)
	log.Info().Msg("stopped")
}

// waitBackground waits for the background work to stop, at most timeout:
// SIGTERM always ends the process.
func waitBackground(bg *errgroup.Group, timeout time.Duration, log zerolog.Logger) {
	done := make(chan error, 1)
	go func() { done <- bg.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			log.Warn().Err(err).Msg("background work")
		}
	case <-time.After(timeout):
		log.Error().Int64("waited_ms", timeout.Milliseconds()).Msg("background work did not stop in time: exiting anyway")
	}
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// logStart says at start what is on and off, so that an operator sees a
// missing piece in the first lines of the log.
func (d *daemon) logStart() {
	cfg, log := d.cfg, d.log
	ver, rev, goVersion := buildVersion()
	interval := cfg.reconcileInterval
	if d.receiver == nil {
		interval = 0
	}
	log.Info().Str("version", ver).Str("commit", rev).Str("go_version", goVersion).
		Strs("accounts", d.accountSet().names()).
		Str("receiver", receiverState(d.receiver)).Bool("sink", d.receiver != nil).
		Dur("reconcile_interval_ms", interval).Bool("admin_routes", cfg.adminUser != "").
		Msg("deskrelay starting")
	if names := cfg.apiTokenAccounts(); len(names) > 0 {
		log.Warn().Time("retires", apiTokenRetirement).Strs("accounts", names).
			Msg("Zendesk API-token auth is in use: Zendesk stops accepting API tokens on 2027-04-30; move to OAuth (DESKRELAY_ZENDESK_OAUTH_CLIENT_ID, _CLIENT_SECRET, _REFRESH_TOKEN)")
	}
	if d.receiver == nil {
		log.Warn().Msg("inbound is off: set DESKRELAY_SINK_URL and DESKRELAY_SINK_SECRET to deliver Zendesk's updates to the platform")
	} else {
		for _, name := range d.accountSet().names() {
			if d.receiver.ReceiverStatus(name).State == inbound.ReceiverOff {
				log.Warn().Str("account", name).Msg("the webhook receiver is off: set the webhook secret (DESKRELAY_WEBHOOK_SECRET, or webhook_secret_file in the accounts file) or the webhook id to read it from Zendesk")
			}
		}
	}
	if d.receiver == nil || cfg.reconcileInterval == 0 {
		log.Warn().Msg("the reconciler schedule is off: dropped webhooks are only recovered by 'deskrelay reconcile'")
	}
	if cfg.adminUser == "" {
		log.Info().Msg("admin routes (/v1/status, /monitoring/) are off: set DESKRELAY_ADMIN_USER and DESKRELAY_ADMIN_PASSWORD")
	}
}

// receiverState is the webhook receiver's state for the start-up line.
func receiverState(r *inbound.Receiver) string {
	if r == nil {
		return string(inbound.ReceiverOff)
	}
	return string(r.ReceiverStatus(keys.DefaultAccount).State)
}

func newDaemon(ctx context.Context, cfg *config, log zerolog.Logger) (*daemon, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p, err := build(ctx, cfg, log, reg)
	if err != nil {
		return nil, err
	}
	d := &daemon{
		parts:    p,
		cfg:      cfg,
		log:      log,
		metrics:  reg,
		reloaded: make(chan struct{}, 1),
		authMode: authModeGauge(),
	}
	reg.MustRegister(newQueueCollector(p.insp, d.outboundStates, log))
	reg.MustRegister(d.authMode, buildInfoGauge(), reconcileIntervalGauge(cfg.reconcileInterval))
	d.setAuthModes()
	d.asynqSrv = queues.NewServer(cfg.redis, queues.ServerConfig{
		Concurrency:     cfg.concurrency,
		Policy:          queues.Policy{MaxDelay: cfg.retryMaxDelay},
		ShutdownTimeout: cfg.shutdownTimeout,
		PollInterval:    cfg.tuning.pollInterval,
	}, log)
	return d, nil
}

func (d *daemon) close() { d.parts.close() }

// outboundStates are the accounts' relays, for the queue collector.
func (d *daemon) outboundStates() map[string]outboundState {
	set := d.accountSet()
	out := make(map[string]outboundState, len(set.list))
	for _, a := range set.list {
		out[a.name()] = a.relay
	}
	return out
}

// buildInfoGauge is deskrelay_build_info{version,commit,go_version} 1.
func buildInfoGauge() prometheus.Collector {
	ver, rev, goVersion := buildVersion()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "deskrelay_build_info",
		Help: "1, labelled with the running build's version, commit and Go version.",
	}, []string{"version", "commit", "go_version"})
	g.WithLabelValues(ver, rev, goVersion).Set(1)
	return g
}

// authModeGauge exports which way each account authenticates with Zendesk,
// so that an alert can fire while the retiring API-token auth is still in
// use (setAuthModes fills it).
func authModeGauge() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "deskrelay_zendesk_auth_mode",
		Help: "1 for the way the account authenticates with Zendesk (api_token retires on 2027-04-30).",
	}, []string{"account", "mode", "retires"})
}

// setAuthModes sets deskrelay_zendesk_auth_mode for the accounts served.
func (d *daemon) setAuthModes() {
	d.authMode.Reset()
	for _, a := range d.accountSet().list {
		switch {
		case a.cfg.oauth.set():
			d.authMode.WithLabelValues(a.name(), "oauth_refresh", "").Set(1)
		case a.cfg.zendesk.OAuthToken != "":
			d.authMode.WithLabelValues(a.name(), "oauth_token", "").Set(1)
		default:
			d.authMode.WithLabelValues(a.name(), "api_token", apiTokenRetirement.Format("2006-01-02")).Set(1)
		}
	}
}
