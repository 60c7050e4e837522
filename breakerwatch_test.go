package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// TestWatchBreakerWarnsBetweenReconcileRuns: with a webhook whose calls all
// fail, the minute-by-minute check records the failure ratio in the
// guardian's state (what /v1/status shows) without waiting for a reconcile run.
func TestWatchBreakerWarnsBetweenReconcileRuns(t *testing.T) {
	db := redistest.New(t)
	zd := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	failing := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	srv := startHTTP(t, failing)
	hook := zd.AddWebhook(srv+"/v1/zendesk/webhook", "webhook-secret-SECRET3", zendesktest.EventCommentAdded)
	ticket := zd.CreateTicket(zendeskTicket("conv_b"))
	for i := 0; i < 60; i++ {
		zd.AgentComment(ticket, "reply", true)
	}

	env := daemonEnv(t, db.URL(), zd.URL())
	env["DESKRELAY_ZENDESK_WEBHOOK_ID"] = hook
	v := values{}
	for _, s := range settings {
		v[s.env] = s.def
	}
	for k, val := range env {
		v[k] = val
	}
	cfg, err := parseConfig(v, needs{zendesk: true, ingest: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg.tuning.breakerInterval = 50 * time.Millisecond
	d, err := newDaemon(context.Background(), cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.watchBreaker(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	testutil.WaitFor(t, 10*time.Second, func() bool {
		st, ok, err := d.reconciler.Guardian().LastCheck(context.Background())
		return err == nil && ok && st.Breaker != nil && st.Breaker.Failed >= 50
	}, "the early warning recorded")
	st, _, _ := d.reconciler.Guardian().LastCheck(context.Background())
	if !st.Breaker.Warning || st.Breaker.StatusCodes["500"] == 0 || st.Breaker.Message == "" {
		t.Fatalf("60 failing calls of 60 did not warn, naming the 500s: %+v", st.Breaker)
	}
}

func startHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func zendeskTicket(conv string) zendesk.NewTicket {
	return zendesk.NewTicket{Subject: "crash", ExternalID: conv, Comment: zendesk.CommentInput{Body: "it crashes", Public: true},
		Requester: &zendesk.Requester{Name: "Ann", Email: "ann@example.com"}}
}
