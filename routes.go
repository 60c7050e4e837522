package main

import (
	"context"
	"net/http"
	"time"

	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deskrelay/deskrelay/internal/httpx"
)

// routes lists every HTTP route deskrelay serves.
func (d *daemon) routes() http.Handler {
	cfg := d.cfg
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", d.handleHealthz)
	mux.HandleFunc("GET /readyz", d.handleReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/openapi.json", handleOpenAPI)

	// The platform's side: intake, behind the ingest token.
	mux.Handle("POST /v1/messages", httpx.RequireBearer(cfg.ingestToken, d.relay.PostMessage()))
	mux.Handle("GET /v1/messages/{id}", httpx.RequireBearer(cfg.ingestToken, d.relay.GetMessage()))

	// Zendesk's side: the signed webhook, and the legacy target (basic auth).
	if d.receiver != nil {
		if d.secret != "" {
			mux.Handle("POST /v1/zendesk/webhook", d.receiver.Webhook())
		}
		if cfg.targetUser != "" {
			mux.Handle("POST /v1/zendesk/target", httpx.RequireBasic(cfg.targetUser, cfg.targetPassword, "deskrelay target", d.receiver.Target()))
		}
	}

	// Operators: status and asynqmon, behind admin basic auth.
	if cfg.adminUser != "" {
		admin := func(h http.Handler) http.Handler {
			return httpx.RequireBasic(cfg.adminUser, cfg.adminPassword, "deskrelay admin", h)
		}
		mux.Handle("GET /v1/status", admin(http.HandlerFunc(d.handleStatus)))
		mon := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: cfg.redis})
		mux.Handle("/monitoring/", admin(mon))
	}

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return observed(mux)
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
