package reconcile

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

func TestGuardian(t *testing.T) {
	t.Run("TargetDeactivatedAfter21FailuresIsReenabledAndTheGapReachesTheSink", func(t *testing.T) {
		ctx := context.Background()
		e := newEnv(t, zendesktest.Config{})
		rc := newReceiver(t, e.pub)
		tid := e.zd.AddTarget(rc.srv.URL+TargetPath, "user", "secret")
		reg := prometheus.NewRegistry()
		r := e.reconciler(t, Config{TargetID: tid, PublicURL: rc.srv.URL, Interval: time.Minute},
			func(d *Deps) { d.Metrics = reg })
		id := e.managedTicket(t)

		// the last event the receiver took, before the checkpoint
		lastReceived := e.clock.Now().Add(-10 * time.Minute).Truncate(time.Second)
		if err := e.rdb.Set(ctx, keys.Default.WebhookLastReceived(), lastReceived.UnixMilli(), 0).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}

		rc.down.Store(true)
		var want []string
		for range 12 {
			e.clock.Advance(time.Second)
			want = append(want, events.CommentEventID(e.zd.AgentComment(id, "reply", true)))
		}
		st, err := r.Guardian().Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != "active" || st.ConsecutiveFailures != 12 || st.Action != ActionObserved {
			t.Fatalf("status before the limit: %+v", st)
		}
		for range 13 {
			e.clock.Advance(time.Second)
			want = append(want, events.CommentEventID(e.zd.AgentComment(id, "reply", true)))
		}
		if tg, _ := e.zd.Target(tid); tg.Active {
			t.Fatal("the fake did not deactivate the target after 21 failures")
		}
		rc.down.Store(false)
		e.clock.Advance(2 * time.Minute)

		rep, err := r.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tg, _ := e.zd.Target(tid); !tg.Active {
			t.Fatal("target still inactive after the run")
		}
		s, err := r.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Webhook == nil || s.Webhook.Action != ActionReenabled || s.Webhook.Reenables != 1 || !s.Webhook.GapSince.Equal(lastReceived) {
			t.Fatalf("status webhook %+v", s.Webhook)
		}
		if !rep.Window.Since.Equal(lastReceived) {
			t.Errorf("run started at %v, want the gap's start %v", rep.Window.Since, lastReceived)
		}
		if n, _ := e.rdb.Exists(ctx, keys.Default.ReconcileRewind()).Result(); n != 0 {
			t.Error("rewind left behind after the run covered it")
		}
		if !sameSet(e.sink(t), want) {
			t.Errorf("sink %v, want the gap's %d comments", sortedKeys(e.sink(t)), len(want))
		}
		var m dto.Metric
		if err := r.m.reenables.WithLabelValues(KindTarget).Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
			v := m.GetCounter().GetValue()
			t.Errorf("reenables metric %v", v)
		}
		if s.CheckpointAge < 0 || s.LastRun == nil || s.LastRun.Enqueued != len(want) {
			t.Errorf("status %+v", s)
		}
	})

	t.Run("WebhookRefusedWhenNotOursEnabledWhenOurs", func(t *testing.T) {
		ctx := context.Background()
		e := newEnv(t, zendesktest.Config{})
		foreign := e.zd.AddWebhook("https://elsewhere.example.com/hooks", "")
		e.zd.SetWebhookStatus(foreign, "inactive")
		r := e.reconciler(t, Config{WebhookID: foreign, PublicURL: "https://relay.example.com"})
		st, err := r.Guardian().Enable(ctx)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "not this deskrelay") || st.Ours {
			t.Fatalf("foreign webhook: %+v, %v", st, err)
		}
		if wh, _ := e.zd.Webhook(foreign); wh.Status != "inactive" {
			t.Fatal("foreign webhook re-enabled")
		}

		ours := e.zd.AddWebhook("https://relay.example.com"+WebhookPath, "")
		e.zd.SetWebhookStatus(ours, "inactive")
		r = e.reconciler(t, Config{WebhookID: ours, PublicURL: "https://relay.example.com/"})
		st, err = r.Guardian().Enable(ctx)
		if err != nil || st.Action != ActionReenabled {
			t.Fatalf("healthy: %+v, %v", st, err)
		}
		if wh, _ := e.zd.Webhook(ours); wh.Status != "active" {
			t.Fatal("webhook not re-enabled")
		}
		st, err = r.Guardian().Enable(ctx)
		if err != nil || st.Action != ActionNone {
			t.Fatalf("already active: %+v, %v", st, err)
		}
	})

	t.Run("NothingConfiguredIsNoError", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		r := e.reconciler(t, Config{})
		st, err := r.Guardian().Status(context.Background())
		if err != nil || st.Kind != "" {
			t.Fatalf("%+v, %v", st, err)
		}
	})
}
