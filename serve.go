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

	"github.com/deskrelay/deskrelay/internal/logging"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk"
)

func cmdServe(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "serve", "serve [flags]")
	resolve := bindSettings(fs, env.getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	cfg, err := parseConfig(resolve(), needs{zendesk: true, ingest: true})
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitCode(2)
	}
	log, err := logging.New(env.stderr, cfg.logFormat, cfg.logLevel)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log)
}

// daemon is everything serve runs, wired together.
type daemon struct {
	cfg      *config
	log      zerolog.Logger
	rdb      redis.UniversalClient
	zd       *zendesk.Client
	metrics  *prometheus.Registry
	asynqSrv *asynq.Server
	mux      *asynq.ServeMux
	working  atomic.Bool // asynq workers are running
}

// serve runs the daemon until ctx is done, then shuts down in order: stop
// HTTP intake, drain the workers, stop the schedule.
func serve(ctx context.Context, cfg *config, log zerolog.Logger) error {
	d, err := newDaemon(cfg, log)
	if err != nil {
		return err
	}
	defer d.close()

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("DESKRELAY_LISTEN: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = d.rdb.Ping(pingCtx).Err()
	cancel()
	if err != nil {
		// Not fatal: intake answers 503 and readyz says why until Redis is back.
		log.Error().Err(err).Msg("Redis is unreachable at start; /readyz will fail until it answers")
	}
	if cfg.apiTokenAuth() {
		log.Warn().Time("retires", apiTokenRetirement).
			Msg("Zendesk API-token auth is in use: Zendesk stops accepting API tokens on 2027-04-30; move to OAuth (DESKRELAY_ZENDESK_OAUTH_CLIENT_ID, _CLIENT_SECRET, _REFRESH_TOKEN)")
	}

	httpSrv := &http.Server{
		Handler:           d.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		log.Info().Str("addr", ln.Addr().String()).Msg("deskrelay listening")
		if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	if err := d.asynqSrv.Start(d.mux); err != nil {
		_ = httpSrv.Close()
		return fmt.Errorf("start workers: %w", err)
	}
	d.working.Store(true)
	g.Go(func() error {
		<-gctx.Done()
		log.Info().Msg("shutting down: stopping intake")
		shutCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
		defer cancel()
		if err := httpSrv.Shutdown(shutCtx); err != nil {
			log.Warn().Err(err).Msg("http shutdown")
		}
		log.Info().Msg("shutting down: draining workers")
		d.working.Store(false)
		d.asynqSrv.Shutdown()
		log.Info().Msg("stopped")
		return nil
	})
	return g.Wait()
}

func newDaemon(cfg *config, log zerolog.Logger) (*daemon, error) {
	rdb, ok := cfg.redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, errors.New("DESKRELAY_REDIS_URL: unsupported connection kind")
	}
	zcfg := cfg.zendesk
	zd, err := zendesk.New(zcfg)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d := &daemon{
		cfg:     cfg,
		log:     log,
		rdb:     rdb,
		zd:      zd,
		metrics: reg,
		mux:     asynq.NewServeMux(),
	}
	d.asynqSrv = relay.NewServer(cfg.redis, relay.ServerConfig{
		Concurrency:     cfg.concurrency,
		Policy:          relay.Policy{MaxDelay: cfg.retryMaxDelay},
		ShutdownTimeout: cfg.shutdownTimeout,
	}, log)
	return d, nil
}

func (d *daemon) close() {
	_ = d.rdb.Close()
}
