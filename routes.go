package main

import (
	"context"
	"net/http"
	"time"

	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deskrelay/deskrelay/internal/httpx"
	"github.com/deskrelay/deskrelay/relay"
)

// routes lists every HTTP route deskrelay serves on its main listener (and,
// in metricsRoutes, the one of DESKRELAY_METRICS_LISTEN). closeRoutes
// closes asynqmon's Redis clients once the server has stopped.
func (d *daemon) routes() (h http.Handler, closeRoutes func()) {
	cfg := d.cfg
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", d.handleHealthz)
	mux.HandleFunc("GET /readyz", d.handleReadyz)
	if cfg.ops.metricsListen == "" {
		mux.Handle("GET /metrics", d.metricsHandler())
	}
	mux.HandleFunc("GET /v1/openapi.json", handleOpenAPI)

	// The platform's side: intake, behind the ingest token.
	// A message names its account ("account", default "default").
	mux.Handle("POST /v1/messages", httpx.RequireBearer(cfg.ingestToken, relay.PostMessage(d.pickRelay)))
	mux.Handle("GET /v1/messages/{id}", httpx.RequireBearer(cfg.ingestToken, relay.GetMessage(d.pickRelay)))

	// Zendesk's side: each account's signed webhook and legacy target
	// (basic auth, checked by the receiver per account); the paths without
	// an account are the account default's.
	if d.receiver != nil {
		// 503 while it waits for its signing secret, 404 when it has no way
		// to get one or the account is not served
		mux.Handle("POST /v1/zendesk/webhook", d.receiver.Webhook())
		mux.Handle("POST /v1/zendesk/webhook/{account}", d.receiver.Webhook())
		mux.Handle("POST /v1/zendesk/target", d.receiver.Target())
		mux.Handle("POST /v1/zendesk/target/{account}", d.receiver.Target())
	}

	closeRoutes = func() {}
	if cfg.adminUser != "" {
		closeRoutes = d.adminRoutes(mux)
	}

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return observed(mux), closeRoutes
}

// pickRelay is the relay of the account a message names, or nil when the
// account is not served (intake answers 422).
func (d *daemon) pickRelay(name string) *relay.Relay {
	if a := d.account(name); a != nil {
		return a.relay
	}
	return nil
}

// adminRoutes adds the operators' routes: status and asynqmon, behind the
// admin login, or the read-only viewer login for GET and HEAD (the viewer
// gets asynqmon's read-only UI). A page on another site cannot make an
// admin's browser change anything, nor frame these pages.
func (d *daemon) adminRoutes(mux *http.ServeMux) (closeRoutes func()) {
	cfg := d.cfg
	admin := httpx.Login{User: cfg.adminUser, Password: cfg.adminPassword}
	viewer := httpx.Login{User: cfg.ops.viewerUser, Password: cfg.ops.viewerPassword}
	guard := func(h http.Handler) http.Handler {
		return httpx.NotFramable(httpx.SameSiteWrites(cfg.publicURL, httpx.RequireLogin(admin, viewer, "deskrelay admin", h)))
	}
	mux.Handle("GET /v1/status", guard(http.HandlerFunc(d.handleStatus)))

	mon := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: cfg.redis})
	closers := []func() error{mon.Close}
	var monitoring http.Handler = mon
	if viewer.User != "" {
		ro := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: cfg.redis, ReadOnly: true})
		closers = append(closers, ro.Close)
		monitoring = httpx.ByLogin(mon, ro)
	}
	mux.Handle("/monitoring/", guard(monitoring))
	return func() {
		for _, c := range closers {
			_ = c()
		}
	}
}

// metricsHandler serves the Prometheus registry.
func (d *daemon) metricsHandler() http.Handler {
	return promhttp.HandlerFor(d.metrics, promhttp.HandlerOpts{})
}

// metricsRoutes is DESKRELAY_METRICS_LISTEN's handler: /metrics and nothing else.
func (d *daemon) metricsRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", d.metricsHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteError(w, http.StatusNotFound, "not_found", "this address serves GET /metrics only")
	})
	return mux
}

func (d *daemon) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz answers 200 when Redis answers and the workers run; Zendesk's
// state does not matter, so that messages are still accepted while it is down.
func (d *daemon) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := d.rdb.Ping(ctx).Err(); err != nil {
		httpx.WriteError(w, http.StatusServiceUnavailable, "redis_unreachable", "Redis does not answer")
		return
	}
	if !d.working.Load() {
		httpx.WriteError(w, http.StatusServiceUnavailable, "workers_stopped", "asynq workers are not running")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
