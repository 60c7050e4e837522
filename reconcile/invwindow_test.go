package reconcile

import (
	"context"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

func TestInvocationsWindow(t *testing.T) {
	t.Run("AnInvocationThatFailedSecondsAgoIsRecoveredByTheNextRun", func(t *testing.T) {
		ctx := context.Background()
		e, r, _, ticket := afterFirstRun(t)
		e.zd.ScriptInvocations(1, zendesktest.InvocationCircuitBroken, 0)
		id := events.CommentEventID(e.zd.AgentComment(ticket, "dropped by the breaker", true))
		e.clock.Advance(5 * time.Second)

		rep, err := r.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := e.sink(t)[id]; !ok || rep.FromInvocations != 1 {
			t.Fatalf("event of an invocation that failed 5s ago: in sink %v, from invocations %d; want recovered by this run (invocations %+v)",
				ok, rep.FromInvocations, rep.Invocations)
		}
		now := e.clock.Now()
		if u := rep.Invocations.Window.Until; now.Sub(u) > 2*time.Second {
			t.Errorf("invocations window ends at %v, %s before now: want now, not now − Lag", u, now.Sub(u))
		}
		cp, ok, err := r.readCheckpoint(ctx, invocationsCheckpoint)
		if want := rep.Invocations.Window.Until.Add(-invocationsSettle); err != nil || !ok || !cp.Equal(want) {
			t.Errorf("invocations checkpoint %v %v %v, want %v (the window's end less the settle time)", cp, ok, err, want)
		}
		if ecp, _, _ := r.Checkpoint(ctx); !ecp.Before(cp) {
			t.Errorf("export checkpoint %v not behind the invocations' %v: the export keeps its lag", ecp, cp)
		}
	})
}

// afterFirstRun is a reconciler with a webhook calling deskrelay's receiver
// and one managed ticket, a minute after its first scheduled run: the
// invocations that fail from now on are the next run's to recover.
func afterFirstRun(t *testing.T) (e *env, r *Reconciler, hook string, ticket int64) {
	t.Helper()
	e = newEnv(t, zendesktest.Config{})
	rc := newReceiver(t, e.pub)
	hook = e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded)
	ticket = e.managedTicket(t)
	r = e.reconciler(t, Config{Interval: time.Minute, WebhookID: hook})
	if _, err := r.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	return e, r, hook, ticket
}
