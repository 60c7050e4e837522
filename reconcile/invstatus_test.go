package reconcile

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// Zendesk's recorded invocation statuses besides the documented ones:
// "terminated" with the endpoint's status code (403) and "throttled" with
// none (docs/zendesk.md, "Invocations"); the fake scripts both.
func TestInvocationStatusesRecorded(t *testing.T) {
	t.Run("TerminatedAndThrottledAreRecovered", func(t *testing.T) {
		ctx := context.Background()
		e, r, hook, ticket := afterFirstRun(t)
		e.zd.ScriptInvocations(1, zendesktest.InvocationTerminated, 403)
		e.zd.ScriptInvocations(1, zendesktest.InvocationThrottled, 0)
		var want []string
		for _, body := range []string{"refused by a firewall", "held back by Zendesk"} {
			e.clock.Advance(time.Second)
			want = append(want, events.CommentEventID(e.zd.AgentComment(ticket, body, true)))
		}
		for _, inv := range e.zd.Invocations(hook) {
			if inv.Status == zendesktest.InvocationThrottled && inv.StatusCode != 0 || inv.Status == zendesktest.InvocationTerminated && inv.StatusCode != 403 {
				t.Fatalf("fake's invocation %+v not in the recorded shape", inv)
			}
		}
		e.clock.Advance(5 * time.Second)
		rep, err := r.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ir := rep.Invocations
		if got := e.sink(t); !sameSet(got, want) || rep.FromInvocations != 2 {
			t.Fatalf("sink %v, from invocations %d; want both events %v (invocations %+v)", sortedKeys(got), rep.FromInvocations, want, ir)
		}
		if ir.ByStatus[zendesktest.InvocationTerminated] != 1 || ir.ByStatus[zendesktest.InvocationThrottled] != 1 || ir.Recovered != 2 {
			t.Errorf("invocations report %+v: want one terminated and one throttled, both recovered", ir)
		}
	})

	t.Run("BreakerCountsTerminatedAsFailedAndReportsThrottled", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		rc := newScriptedReceiver(t) // answers 200 unless told otherwise
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded)
		ticket := e.managedTicket(t)
		logs := &logBuffer{}
		reg := prometheus.NewRegistry()
		r := e.reconciler(t, Config{WebhookID: hook}, withLog(logs), func(d *Deps) { d.Metrics = reg })
		e.zd.ScriptInvocations(30, zendesktest.InvocationTerminated, 403)
		e.zd.ScriptInvocations(5, zendesktest.InvocationThrottled, 0)
		for range 30 + 5 + 30 { // the last 30 reach the receiver and succeed
			e.clock.Advance(time.Second)
			e.zd.AgentComment(ticket, "reply", true)
		}
		st, err := r.guardian.check(context.Background(), &budget{}, false)
		if err != nil {
			t.Fatal(err)
		}
		bs := st.Breaker
		if bs == nil || bs.Requests != 60 || bs.Failed != 30 || bs.StatusCodes["403"] != 30 || len(bs.StatusCodes) != 1 ||
			bs.Throttled != 5 || !bs.Warning || bs.Tripped {
			t.Fatalf("breaker %+v: want 30 of 60 failed with 403, 5 throttled apart, a warning", bs)
		}
		for _, s := range []string{"403 ×30", "throttled 5"} {
			if !strings.Contains(bs.Message, s) {
				t.Errorf("message %q does not say %q", bs.Message, s)
			}
		}
		if len(logs.lines("warn", "throttled 5")) == 0 {
			t.Error("no warning naming the throttled events")
		}
		m := gather(t, reg)
		if m[`deskrelay_webhook_recent_failures{account="default",zendesk_status="403"}`] != 30 || m[`deskrelay_webhook_throttled{account="default"}`] != 5 {
			t.Errorf("metrics: 403 failures %v, throttled %v; want 30, 5", m[`deskrelay_webhook_recent_failures{account="default",zendesk_status="403"}`], m[`deskrelay_webhook_throttled{account="default"}`])
		}
	})

	t.Run("ThrottledAloneWarnsWithoutARatio", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		rc := newScriptedReceiver(t)
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded)
		ticket := e.managedTicket(t)
		r := e.reconciler(t, Config{WebhookID: hook})
		e.zd.ScriptInvocations(3, zendesktest.InvocationThrottled, 0)
		for range 3 {
			e.clock.Advance(time.Second)
			e.zd.AgentComment(ticket, "reply", true)
		}
		bs, err := r.Guardian().CheckBreaker(context.Background())
		if err != nil || bs == nil || bs.Requests != 0 || bs.Throttled != 3 || !bs.Warning || len(bs.StatusCodes) != 0 {
			t.Fatalf("breaker %+v, %v: want 3 throttled, no requests, a warning", bs, err)
		}
		if strings.Contains(bs.Message, "0 of 0") || !strings.Contains(bs.Message, "throttled 3") {
			t.Errorf("message %q: want the throttled events, no ratio of nothing", bs.Message)
		}
	})
}
