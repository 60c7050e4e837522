package reconcile

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// fakeReceiver is Deps.Receiver with RefreshSecret: it counts the re-reads
// and fails them while err is set.
type fakeReceiver struct {
	redisReceiver
	refreshes atomic.Int32
	err       atomic.Pointer[error]
}

func (f *fakeReceiver) RefreshSecret(context.Context) error {
	f.refreshes.Add(1)
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

// ourWebhook adds a webhook pointing to this deskrelay's public URL,
// switched off as a person would.
func ourWebhook(e *env, inactive bool) string {
	hook := e.zd.AddWebhook(testPublicURL+WebhookPath, "", zendesktest.EventCommentAdded)
	if inactive {
		e.zd.SetWebhookStatus(hook, "inactive")
	}
	return hook
}

const testPublicURL = "https://relay.example.com"

func TestGuardianSecretEvidence(t *testing.T) {
	t.Run("UnsignedJunkDoesNotBlockReactivation", func(t *testing.T) {
		ctx := context.Background()
		e := newEnv(t, zendesktest.Config{})
		hook := ourWebhook(e, true)
		r := e.reconciler(t, Config{WebhookID: hook, PublicURL: testPublicURL, WebhookAutoEnable: true})
		// what three unsigned POSTs of {} leave behind in the receiver's count
		if err := e.rdb.HSet(ctx, keys.Default.WebhookSignatureFailures(), "run", 3).Err(); err != nil {
			t.Fatal(err)
		}
		st, err := r.guardian.check(ctx, &budget{}, false)
		if err != nil || st.Action != ActionReenabled || !st.ReceiverHealthy || st.SignatureRejections != 0 {
			t.Fatalf("scheduled check after local signature failures: %+v, %v; want re-enabled", st, err)
		}
		if wh, _ := e.zd.Webhook(hook); wh.Status != "active" {
			t.Fatal("webhook left inactive by unsigned junk")
		}
		if st.LocalSignatureFailures != 3 {
			t.Errorf("local signature failures %d, want 3 shown (and ignored)", st.LocalSignatureFailures)
		}
		e.zd.SetWebhookStatus(hook, "inactive")
		if st, err := r.Guardian().Enable(ctx); err != nil || st.Action != ActionReenabled {
			t.Fatalf("webhook enable after local signature failures: %+v, %v", st, err)
		}
	})

	t.Run("ZendeskRecordOf401sBlocksAndRereadsTheSecretOncePerMinute", func(t *testing.T) {
		ctx := context.Background()
		e := newEnv(t, zendesktest.Config{})
		hook := ourWebhook(e, false)
		ticket := e.managedTicket(t)
		logs := &logBuffer{}
		reg := prometheus.NewRegistry()
		recv := &fakeReceiver{redisReceiver: redisReceiver{rdb: e.rdb, space: keys.Default}}
		configured := errors.New("the secret is configured, not read from Zendesk")
		recv.err.Store(&configured)
		r := e.reconciler(t, Config{WebhookID: hook, PublicURL: testPublicURL, WebhookAutoEnable: true}, withLog(logs),
			func(d *Deps) { d.Metrics = reg; d.Receiver = recv })

		// a verified call arrived, then Zendesk's calls were answered 401
		e.clock.Advance(time.Second)
		if err := e.rdb.Set(ctx, keys.Default.WebhookLastReceived(), e.clock.Now().UnixMilli(), 0).Err(); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(2 * time.Second)
		e.zd.ScriptInvocations(2, zendesktest.InvocationFailed, 401)
		e.zd.ScriptInvocations(1, zendesktest.InvocationTerminated, 401)
		e.zd.ScriptInvocations(1, zendesktest.InvocationFailed, 500) // not a signature problem
		for range 4 {
			e.clock.Advance(time.Second)
			e.zd.AgentComment(ticket, "reply", true)
		}
		e.zd.SetWebhookStatus(hook, "inactive")
		e.clock.Advance(time.Second)

		st, err := r.guardian.check(ctx, &budget{}, false)
		if err != nil || st.Action != ActionRefused || st.ReceiverHealthy || st.SignatureRejections != 3 {
			t.Fatalf("check with Zendesk's 401s: %+v, %v; want refused, 3 rejections", st, err)
		}
		if !strings.Contains(st.Reason, "401") || !strings.Contains(st.Reason, "DESKRELAY_WEBHOOK_SECRET") {
			t.Errorf("reason %q does not name the 401s and the secret", st.Reason)
		}
		if wh, _ := e.zd.Webhook(hook); wh.Status != "inactive" {
			t.Fatal("webhook re-enabled although Zendesk's calls were answered 401")
		}
		if n := recv.refreshes.Load(); n != 1 {
			t.Fatalf("secret re-read %d times, want once", n)
		}
		if len(logs.lines("error", "401")) == 0 {
			t.Error("Zendesk's 401s not logged as an error")
		}
		if v := gather(t, reg)[`deskrelay_webhook_signature_rejections{account="default",kind="webhook"}`]; v != 3 {
			t.Errorf("rejections metric %v, want 3", v)
		}
		if s, err := r.Status(ctx); err != nil || s.Webhook == nil || s.Webhook.SignatureRejections != 3 {
			t.Errorf("status %+v, %v: want the 3 rejections", s.Webhook, err)
		}
		if _, err := r.Guardian().Enable(ctx); !errors.Is(err, ErrRefused) {
			t.Errorf("webhook enable with Zendesk's 401s: %v, want refused", err)
		}

		// within the minute: no second re-read; after it: one more, which works
		if n := recv.refreshes.Load(); n != 1 {
			t.Fatalf("secret re-read %d times within a minute, want once", n)
		}
		e.clock.Advance(time.Minute)
		recv.err.Store(nil)
		st, err = r.guardian.check(ctx, &budget{}, false)
		if err != nil || st.Action != ActionRefused || recv.refreshes.Load() != 2 {
			t.Fatalf("a minute later: %+v, %v, %d re-reads; want refused and a second re-read", st, err, recv.refreshes.Load())
		}
		// the 401s predate the secret read again: the next check re-enables
		e.clock.Advance(time.Second)
		st, err = r.guardian.check(ctx, &budget{}, false)
		if err != nil || st.Action != ActionReenabled || st.SignatureRejections != 0 || recv.refreshes.Load() != 2 {
			t.Fatalf("after the secret was read again: %+v, %v, %d re-reads; want re-enabled", st, err, recv.refreshes.Load())
		}
	})

	t.Run("AutoEnableOffReportsTheInactiveWebhookAndBackfills", func(t *testing.T) {
		ctx := context.Background()
		e := newEnv(t, zendesktest.Config{})
		hook := ourWebhook(e, true)
		logs := &logBuffer{}
		reg := prometheus.NewRegistry()
		r := e.reconciler(t, Config{WebhookID: hook, PublicURL: testPublicURL, Interval: time.Minute}, withLog(logs),
			func(d *Deps) { d.Metrics = reg })
		for range 2 {
			rep, err := r.RunOnce(ctx)
			if err != nil || !rep.Complete {
				t.Fatalf("run with the webhook off: %+v, %v; want a complete backfill", rep, err)
			}
			e.clock.Advance(time.Minute)
		}
		if wh, _ := e.zd.Webhook(hook); wh.Status != "inactive" {
			t.Fatal("webhook re-activated although DESKRELAY_WEBHOOK_AUTO_ENABLE is off")
		}
		s, err := r.Status(ctx)
		if err != nil || s.Webhook == nil || s.Webhook.State != "inactive" || s.Webhook.Action != ActionReported ||
			!strings.Contains(s.Webhook.Reason, "deskrelay webhook enable") {
			t.Fatalf("status %+v, %v: want the inactive webhook reported", s.Webhook, err)
		}
		if v, ok := gather(t, reg)[`deskrelay_webhook_active{account="default",kind="webhook"}`]; !ok || v != 0 {
			t.Errorf("deskrelay_webhook_active %v (%v), want 0", v, ok)
		}
		if n := len(logs.lines("warn", "inactive")); n != 1 {
			t.Errorf("%d warnings for the inactive webhook over two runs, want 1 (on the change)", n)
		}
		e.clock.Advance(inactiveLogEvery)
		if _, err := r.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(logs.lines("warn", "inactive")); n != 2 {
			t.Errorf("%d warnings after %s, want a periodic reminder", n, inactiveLogEvery)
		}
		// on demand it is re-activated
		if st, err := r.Guardian().Enable(ctx); err != nil || st.Action != ActionReenabled {
			t.Fatalf("webhook enable: %+v, %v", st, err)
		}
		if wh, _ := e.zd.Webhook(hook); wh.Status != "active" {
			t.Fatal("webhook enable did not re-activate the webhook")
		}
	})
}

func TestGuardianTargetEvidence(t *testing.T) {
	t.Run("TargetDeactivatedAfter401sIsNotReenabled", func(t *testing.T) {
		ctx := context.Background()
		e := newEnv(t, zendesktest.Config{})
		rc := newScriptedReceiver(t)
		tid := e.zd.AddTarget(rc.srv.URL+TargetPath, "user", "wrong")
		ticket := e.managedTicket(t)
		r := e.reconciler(t, Config{TargetID: tid, PublicURL: rc.srv.URL})
		rc.answer(repeat(21, 401)...)
		for range 21 {
			e.clock.Advance(time.Second)
			e.zd.AgentComment(ticket, "reply", true)
		}
		if tg, _ := e.zd.Target(tid); tg.Active {
			t.Fatal("the fake did not deactivate the target after 21 failures")
		}
		st, err := r.guardian.check(ctx, &budget{}, false)
		if err != nil || st.Action != ActionRefused || st.SignatureRejections != 21 || !strings.Contains(st.Reason, "DESKRELAY_TARGET_PASSWORD") {
			t.Fatalf("target answered 401: %+v, %v; want refused, 21 rejections", st, err)
		}
		if tg, _ := e.zd.Target(tid); tg.Active {
			t.Fatal("target re-activated although its calls were answered 401")
		}
	})
}

// TestRejectionsCountedAlikeOnOnePageAndByStatus: Zendesk's record of 401s
// is counted from one listing of every status when it fits a page, and
// status by status when it does not; both count the same calls.
func TestRejectionsCountedAlikeOnOnePageAndByStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pageSize int
		byStatus bool
		listings int
	}{{"OnePage", 100, false, 1}, {"ByStatus", 2, true, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, zendesktest.Config{})
			hook := ourWebhook(e, false)
			ticket := e.managedTicket(t)
			e.zd.ScriptInvocations(2, zendesktest.InvocationFailed, 401)
			e.zd.ScriptInvocations(1, zendesktest.InvocationTerminated, 401)
			e.zd.ScriptInvocations(1, zendesktest.InvocationFailed, 500)
			for range 6 {
				e.clock.Advance(time.Second)
				e.zd.AgentComment(ticket, "reply", true)
			}
			e.clock.Advance(time.Second)
			r := e.reconciler(t, Config{WebhookID: hook, Invocations: InvocationsConfig{PageSize: tc.pageSize}})
			e.zd.ResetRequests()
			n, err := r.guardian.rejectedInvocations(ctx, &budget{}, e.clock.Now().Add(-time.Hour))
			if err != nil || n != 3 {
				t.Fatalf("rejections %d, %v; want 3", n, err)
			}
			statuses := map[string]int{}
			for _, rq := range invocationRequests(e, hook) {
				statuses[rq.Query.Get("filter[status]")]++
			}
			if got := statuses["failed"] > 0 && statuses["terminated"] > 0; got != tc.byStatus {
				t.Errorf("listings by filter[status] %v; by status: %v, want %v", statuses, got, tc.byStatus)
			}
			if tc.listings > 0 && len(invocationRequests(e, hook)) != tc.listings {
				t.Errorf("listings %v, want %d", statuses, tc.listings)
			}
		})
	}
}
