package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/deskrelay/deskrelay/internal/logging"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// setUp starts the demo's world: a working directory, an embedded Redis,
// the fake Zendesk with a target, the platform's sink, the load balancer and
// deskrelay itself.
func (d *demo) setUp(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "deskrelay-demo-")
	if err != nil {
		return fmt.Errorf("demo: working directory: %w", err)
	}
	d.dir = dir
	d.say("working directory %s (deskrelay's log and spool; removed at the end unless --keep)", d.dir)
	if err := d.startRedis(); err != nil {
		return err
	}
	if err := d.startZendesk(); err != nil {
		return err
	}
	d.sink = newDemoSink(d)
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: deskrelay's listener: %w", err)
	}
	d.base = "http://" + ln.Addr().String()
	d.proxy = newFlakyProxy(d.base)
	d.target = d.zd.AddTarget(d.proxy.URL()+"/v1/zendesk/target", demoTargetUser, demoTargetPass)
	if err := d.startDeskrelay(ctx, ln); err != nil {
		return err
	}
	d.say("deskrelay on %s (log: %s)", d.base, d.logPath)
	d.say("asynqmon: %s/monitoring/  metrics: %s/metrics  (admin: %s / %s)", d.base, d.base, demoAdminUser, demoAdminPass)
	d.say("the platform's sink on %s verifies every delivery's Standard Webhooks signature", d.sink.URL())
	return nil
}

func (d *demo) startRedis() error {
	d.redis = miniredis.NewMiniRedis()
	if err := d.redis.Start(); err != nil {
		return fmt.Errorf("demo: embedded Redis: %w", err)
	}
	// miniredis expires keys only when told the time has passed.
	d.stopClock = make(chan struct{})
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-d.stopClock:
				return
			case now := <-tick.C:
				d.redis.FastForward(now.Sub(last))
				d.redis.SetTime(now)
				last = now
			}
		}
	}()
	d.say("embedded Redis (miniredis) on %s — in memory only: 'deskrelay serve' never uses it", d.redis.Addr())
	return nil
}

func (d *demo) startZendesk() error {
	zd, err := zendesktest.Start(zendesktest.Config{
		Email: "demo@example.com", APIToken: "demo-api-token",
		// The fake's minute shrinks to the demo's export window, so that the
		// export's 10 requests per window match what the reconciler expects.
		RateLimit: 600, ExportLag: d.t.exportLag, Window: d.t.exportWindow,
		NotifyAPIWrites: true, // Zendesk's triggers also fire on deskrelay's own comments: no echo must reach the platform
	})
	if err != nil {
		return fmt.Errorf("demo: Zendesk sandbox: %w", err)
	}
	d.zd = zd
	d.say("Zendesk sandbox (the fake from zendesk/zendesktest) on %s", zd.URL())
	return nil
}

// demoSettings are deskrelay's settings in the demo, besides the defaults.
func (d *demo) demoSettings() map[string]string {
	return map[string]string{
		"DESKRELAY_REDIS_URL":          "redis://" + d.redis.Addr() + "/0",
		"DESKRELAY_ZENDESK_URL":        d.zd.URL(),
		"DESKRELAY_ZENDESK_EMAIL":      d.zd.Email(),
		"DESKRELAY_ZENDESK_API_TOKEN":  d.zd.APIToken(),
		"DESKRELAY_ZENDESK_RATE_LIMIT": "300",
		"DESKRELAY_ZENDESK_TARGET_ID":  fmt.Sprint(d.target),
		"DESKRELAY_INGEST_TOKEN":       demoIngestToken,
		"DESKRELAY_SINK_URL":           d.sink.URL(),
		"DESKRELAY_SINK_SECRET":        demoSinkSecret,
		"DESKRELAY_ADMIN_USER":         demoAdminUser,
		"DESKRELAY_ADMIN_PASSWORD":     demoAdminPass,
		"DESKRELAY_TARGET_USER":        demoTargetUser,
		"DESKRELAY_TARGET_PASSWORD":    demoTargetPass,
		"DESKRELAY_PUBLIC_URL":         d.proxy.URL(),
		"DESKRELAY_RECONCILE_INTERVAL": d.t.reconcileInterval.String(),
		"DESKRELAY_RETRY_MAX_DELAY":    "5s",
		"DESKRELAY_SPOOL_DIR":          filepath.Join(d.dir, "spool"),
		"DESKRELAY_SHUTDOWN_TIMEOUT":   "5s",
	}
}

// startDeskrelay runs serve in the background on ln, logging to the
// working directory, and waits until it is ready.
func (d *demo) startDeskrelay(ctx context.Context, ln net.Listener) error {
	v := values{}
	for _, s := range settings {
		v[s.env] = s.def
	}
	for k, val := range d.demoSettings() {
		v[k] = val
	}
	cfg, err := parseConfig(v, needs{zendesk: true, ingest: true})
	if err != nil {
		return fmt.Errorf("demo: settings: %w", err)
	}
	cfg.tuning = tuning{
		listener:        ln,
		pollInterval:    200 * time.Millisecond,
		reconcileLag:    d.t.reconcileLag,
		exportWindow:    d.t.exportWindow,
		gateProbe:       time.Second,
		initialLookback: time.Minute,
	}
	d.logPath = filepath.Join(d.dir, "deskrelay.log")
	if d.logFile, err = os.Create(d.logPath); err != nil {
		return fmt.Errorf("demo: deskrelay's log: %w", err)
	}
	log, err := logging.New(d.logFile, "json", "info")
	if err != nil {
		return err
	}
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.stopDaemon = cancel
	d.daemonDone = make(chan error, 1)
	go func() { d.daemonDone <- serve(dctx, cfg, log) }()
	return d.waitFor(ctx, "deskrelay to be ready", func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// shutdown stops everything setUp started, deskrelay first.
func (d *demo) shutdown() {
	if d.stopDaemon != nil {
		d.stopDaemon()
		select {
		case err := <-d.daemonDone:
			if err != nil {
				fmt.Fprintln(d.env.stderr, "deskrelay stopped with an error:", err)
			}
		case <-time.After(15 * time.Second):
			fmt.Fprintln(d.env.stderr, "deskrelay did not stop within 15s")
		}
	}
	if d.logFile != nil {
		_ = d.logFile.Close()
	}
	if d.proxy != nil {
		d.proxy.Close()
	}
	if d.sink != nil {
		d.sink.Close()
	}
	if d.zd != nil {
		d.zd.Close()
	}
	if d.stopClock != nil {
		close(d.stopClock)
	}
	if d.redis != nil {
		d.redis.Close()
	}
}

// tidy removes the working directory, unless --keep was given or the demo
// failed (then deskrelay's log there tells why).
func (d *demo) tidy(runErr error) {
	if d.dir == "" {
		return
	}
	interrupted := errors.Is(runErr, context.Canceled)
	switch {
	case d.keep:
		fmt.Fprintf(d.env.stdout, "The working directory stays: %s (deskrelay's log: %s)\n", d.dir, d.logPath)
	case runErr != nil && !interrupted:
		fmt.Fprintf(d.env.stderr, "The demo failed; its working directory stays for a look: %s (deskrelay's log: %s)\n", d.dir, d.logPath)
	default:
		if err := os.RemoveAll(d.dir); err != nil {
			fmt.Fprintf(d.env.stderr, "could not remove the working directory %s: %v\n", d.dir, err)
		}
	}
}

func (d *demo) redisPort() string {
	_, port, _ := net.SplitHostPort(d.redis.Addr())
	return port
}

// writeReplicaEnv writes the settings of a second deskrelay against the
// demo's Redis and Zendesk (on a free port, with its own spool) into the
// working directory, for `set -a; . file; deskrelay serve`. They are the
// demo's made-up credentials, on loopback only.
func (d *demo) writeReplicaEnv(ctx context.Context) (string, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("a free port for a second deskrelay: %w", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	v := d.demoSettings()
	v["DESKRELAY_LISTEN"] = addr
	v["DESKRELAY_SPOOL_DIR"] = filepath.Join(d.dir, "replica-spool")
	v["DESKRELAY_LOG_FORMAT"] = "console"
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "# A second deskrelay against the demo's Redis and Zendesk, on %s.\n", addr)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, v[k])
	}
	path := filepath.Join(d.dir, "replica.env")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}
