package reconcile

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// startWorkers runs an asynq server (one replica's) with r's handlers
// until the test ends.
func (e *env) startWorkers(tb testing.TB, r *Reconciler) {
	tb.Helper()
	srv := queues.NewServer(e.db.AsynqOpt(), queues.ServerConfig{Concurrency: 2, PollInterval: 20 * time.Millisecond}, testLogger(tb))
	mux := asynq.NewServeMux()
	r.Register(mux)
	if err := srv.Start(mux); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Shutdown)
}

// watch runs r.WatchBreaker until the returned stop is called (or the test
// ends).
func watch(tb testing.TB, r *Reconciler) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.WatchBreaker(ctx); err != nil {
			tb.Errorf("WatchBreaker: %v", err)
		}
	})
	stop = sync.OnceFunc(func() { cancel(); wg.Wait() })
	tb.Cleanup(stop)
	return stop
}

func TestWatchBreaker(t *testing.T) {
	// WarnsBetweenReconcileRuns: with a webhook whose calls all fail, the
	// watch records the failure ratio in the guardian's state (what
	// /v1/status shows) with no reconcile run at all.
	t.Run("WarnsBetweenReconcileRuns", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		rc := newScriptedReceiver(t)
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded)
		ticket := e.managedTicket(t)
		rc.answer(repeat(60, 500)...)
		for range 60 {
			e.clock.Advance(time.Second)
			e.zd.AgentComment(ticket, "reply", true)
		}
		r := e.reconciler(t, Config{Interval: time.Hour, WebhookID: hook, BreakerCheckInterval: 50 * time.Millisecond})
		e.startWorkers(t, r)
		watch(t, r)

		testutil.WaitFor(t, 10*time.Second, func() bool {
			st, ok, err := r.Guardian().LastCheck(context.Background())
			return err == nil && ok && st.Breaker != nil && st.Breaker.Failed >= 50
		}, "the early warning recorded")
		st, _, _ := r.Guardian().LastCheck(context.Background())
		if !st.Breaker.Warning || st.Breaker.StatusCodes["500"] != 60 || st.Breaker.Message == "" {
			t.Fatalf("60 failing calls of 60 did not warn, naming the 500s: %+v", st.Breaker)
		}
		if n := e.zd.CountRequests("GET", "/api/v2/incremental"); n != 0 {
			t.Errorf("%d export requests: a reconcile run happened", n)
		}
	})

	// TwoReplicasCheckOncePerSlot: both replicas watch, each with its own
	// asynq server; the slot's task id keeps one check per slot.
	t.Run("TwoReplicasCheckOncePerSlot", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		rc := newScriptedReceiver(t)
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded)
		const every = 200 * time.Millisecond
		var stops []func()
		started := time.Now()
		for range 2 {
			r := e.reconciler(t, Config{Interval: time.Hour, WebhookID: hook, BreakerCheckInterval: every})
			e.startWorkers(t, r)
			stops = append(stops, watch(t, r))
		}
		listings := func() int { return e.zd.CountRequests("GET", "/api/v2/webhooks/"+hook+"/invocations") }
		testutil.WaitFor(t, 15*time.Second, func() bool { return listings() >= 8 }, "eight checks")
		for _, stop := range stops {
			stop()
		}
		slots := int(time.Since(started)/every) + 2
		if n := listings(); n > slots {
			t.Errorf("%d checks in %d slots: the watch was not deduplicated across replicas", n, slots)
		}
	})

	t.Run("OffWithoutAWebhookOrASchedule", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		for _, cfg := range []Config{{Interval: time.Hour}, {WebhookID: "01H"}} {
			r := e.reconciler(t, cfg)
			done := make(chan error, 1)
			go func() { done <- r.WatchBreaker(context.Background()) }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("WatchBreaker(%+v) = %v", cfg, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("WatchBreaker(%+v) did not return at once", cfg)
			}
		}
	})
}
