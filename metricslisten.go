package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// metricsServer serves /metrics on DESKRELAY_METRICS_LISTEN, an internal
// address apart from the one Zendesk and the platform call. A nil
// *metricsServer (the setting unset) does nothing.
type metricsServer struct {
	srv *http.Server
	ln  net.Listener
}

// listenMetrics opens DESKRELAY_METRICS_LISTEN; nil when it is unset.
func (d *daemon) listenMetrics(ctx context.Context) (*metricsServer, error) {
	addr := d.cfg.ops.metricsListen
	if addr == "" {
		return nil, nil
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("DESKRELAY_METRICS_LISTEN: %w", err)
	}
	srv := &http.Server{
		Handler:           d.metricsRoutes(),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	return &metricsServer{srv: srv, ln: ln}, nil
}

// serve answers until shutdown.
func (m *metricsServer) serve(d *daemon) error {
	if m == nil {
		return nil
	}
	d.log.Info().Str("addr", m.ln.Addr().String()).Msg("metrics listening")
	if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics server: %w", err)
	}
	return nil
}

// shutdown stops the server; a scrape in progress may finish until ctx ends.
func (m *metricsServer) shutdown(ctx context.Context) error {
	if m == nil {
		return nil
	}
	return m.srv.Shutdown(ctx)
}

// close releases the listener when serve never ran.
func (m *metricsServer) close() {
	if m != nil {
		_ = m.srv.Close()
		_ = m.ln.Close()
	}
}
