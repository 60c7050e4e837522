package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// backlogOf is n messages of an account in n/10 conversations.
func backlogOf(prefix string, n int) []relay.Message {
	convs := max(n/10, 1)
	out := make([]relay.Message, n)
	for i := range n {
		out[i] = msg(fmt.Sprintf("%s%04d", prefix, i%convs), i/convs+1)
	}
	return out
}

// parked is an account's parked count (Report.Parked).
func parked(tb testing.TB, r *relay.Relay) int64 {
	tb.Helper()
	rep, err := r.Report(context.Background())
	if err != nil {
		tb.Fatalf("report: %v", err)
	}
	return rep.Parked
}

// inOrderOnce checks that what a fake holds of each conversation is a
// prefix of want's, each message once.
func inOrderOnce(tb testing.TB, fake *zendesktest.Server, msgs []relay.Message) {
	tb.Helper()
	want := map[string][]string{}
	for _, m := range msgs {
		want[m.ConversationID] = append(want[m.ConversationID], m.Body)
	}
	for conv, got := range conversationBodies(fake) {
		if w := want[conv]; len(got) > len(w) || !slices.Equal(got, w[:len(got)]) {
			tb.Errorf("conversation %s holds %q, want a prefix of %q", conv, got, w)
		}
	}
}

// TestIsolation: account alpha's outage and then its draining backlog do
// not hold up account beta's new messages.
func TestIsolation(t *testing.T) {
	const n = 2000
	a := newAccounts(t, 10, accountOptions{name: "alpha", perMinute: 1200}, accountOptions{name: keys.DefaultAccount})
	alpha, beta := a.relays["alpha"], a.relays[keys.DefaultAccount]
	a.fakes["alpha"].Down()
	backlog := backlogOf("a", n)
	parallel(10, n, func(i int) { mustEnqueue(t, alpha, backlog[i]) })

	// During alpha's outage: beta's message, posted right behind alpha's
	// backlog, is delivered; alpha's backlog parks and waits.
	b1 := msg("b", 1)
	mustEnqueue(t, beta, b1)
	waitStatus(t, beta, []string{b1.ID}, "delivered", 30*time.Second)
	if got := deliveredOf(t, a.reg, "alpha"); got > 0 {
		t.Fatalf("alpha delivered %v while its Zendesk was down", got)
	}
	testutil.WaitFor(t, 60*time.Second, func() bool { return parked(t, alpha) >= n }, "alpha's whole backlog parked")
	// Parked on the long timer (the release wakes them, the timer is a
	// safety net): no task of alpha's comes due before it.
	checkParkedTimers(t, a, "alpha", n)
	// Parked, nothing wakes: no writes reach alpha's Zendesk, only probes.
	quiet := time.Now()
	b2 := msg("b", 2)
	mustEnqueue(t, beta, b2)
	waitStatus(t, beta, []string{b2.ID}, "delivered", 30*time.Second)
	time.Sleep(time.Second)
	if w := countSince(a.fakes["alpha"], quiet, isWrite); w != 0 {
		t.Errorf("%d writes reached alpha's Zendesk while its backlog was parked, want 0", w)
	}

	// Alpha recovers; while its backlog drains, beta's next message goes
	// through before even half of it.
	a.fakes["alpha"].Up()
	testutil.WaitFor(t, 30*time.Second, func() bool { return deliveredOf(t, a.reg, "alpha") > 0 }, "alpha's drain to start")
	b3 := msg("b", 3)
	mustEnqueue(t, beta, b3)
	waitStatus(t, beta, []string{b3.ID}, "delivered", 30*time.Second)
	if got := deliveredOf(t, a.reg, "alpha"); got > n/2 {
		t.Errorf("beta's message waited until alpha delivered %v of %d", got, n)
	}
	if p := parked(t, alpha); p < n/4 {
		t.Errorf("alpha's parked set holds %d, want the most of its backlog still parked", p)
	}
	checkExactlyOnce(t, a.fakes[keys.DefaultAccount], map[string][]string{"b": {b1.Body, b2.Body, b3.Body}})
	inOrderOnce(t, a.fakes["alpha"], backlog)
}

// TestProbeDeliversFirstParked: the probe that finds Zendesk up again
// delivers the oldest parked message itself, before any worker runs, in
// any account.
func TestProbeDeliversFirstParked(t *testing.T) {
	a := newAccounts(t, 0, accountOptions{name: keys.DefaultAccount}, accountOptions{name: "acme"})
	ctx := context.Background()
	for _, acct := range []string{keys.DefaultAccount, "acme"} {
		r := a.relays[acct]
		if err := a.rdb.HSet(ctx, keys.For(acct).OutboundGate(), "state", relay.GateClosed, "failures", 5).Err(); err != nil {
			t.Fatal(err)
		}
		m := msg("first", 1)
		mustEnqueue(t, r, m)
		if p := parked(t, r); p != 1 {
			t.Fatalf("%s: parked = %d, want the message parked at intake", acct, p)
		}
		if err := r.ProbeOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if st, err := r.Status(ctx, m.ID); err != nil || st.Status != relay.StateDelivered {
			t.Fatalf("%s after the probe: %+v, %v; want delivered by the probe itself", acct, st, err)
		}
		if p := parked(t, r); p != 0 {
			t.Errorf("%s: parked = %d after its delivery, want 0", acct, p)
		}
	}
}

// TestBudgetParks: messages beyond the account's budget wait off the
// shared pending list (parked), and all arrive, once, without an attempt
// counted for the wait.
func TestBudgetParks(t *testing.T) {
	e := newEnv(t, envOptions{rateLimit: 120}) // 2/s, burst 12
	want, all := wantBodies(16, 1, "budget")
	enqueueAll(t, e.relay, all)
	// The flood of new messages goes through the pending list once; from
	// the moment the budget parked some, the list holds no more than the
	// release's slices (a budget's two seconds: 4) and successors woken by
	// their predecessor.
	testutil.WaitFor(t, 20*time.Second, func() bool { return parked(t, e.relay) > 0 }, "messages parked by the spent budget")
	testutil.WaitFor(t, 20*time.Second, func() bool {
		qi, err := e.insp.GetQueueInfo(queues.Outbound)
		return err == nil && qi.Pending == 0
	}, "the flood through the pending list")
	maxPending := 0
	testutil.WaitFor(t, 90*time.Second, func() bool {
		if qi, err := e.insp.GetQueueInfo(queues.Outbound); err == nil {
			maxPending = max(maxPending, qi.Pending)
		}
		for _, id := range ids(all) {
			if st, err := e.relay.Status(context.Background(), id); err != nil || st.Status != relay.StateDelivered {
				return false
			}
		}
		return true
	}, "every message delivered")
	checkExactlyOnce(t, e.fake, want)
	if maxPending > 8 {
		t.Errorf("the pending list held up to %d tasks while the budget paced, want the release's slices only", maxPending)
	}
	for _, id := range ids(all) {
		if st, _ := e.relay.Status(context.Background(), id); st.Attempts != 1 {
			t.Errorf("%s attempts = %d, want 1", id, st.Attempts)
		}
	}
}

// checkParkedTimers checks that all n message tasks of an account wait in
// asynq's scheduled or retry set on the park time's timer (fastConfig:
// 20s), none sooner than half of it.
func checkParkedTimers(tb testing.TB, a *accounts, account string, n int) {
	tb.Helper()
	soon := time.Now().Add(10 * time.Second)
	found := 0
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){a.insp.ListScheduledTasks, a.insp.ListRetryTasks} {
		tasks, err := list(queues.Outbound, asynq.PageSize(2*n))
		if err != nil {
			tb.Fatal(err)
		}
		for _, ti := range tasks {
			var p struct{ Account string }
			if ti.Type != relay.TypeMessage || json.Unmarshal(ti.Payload, &p) != nil || p.Account != account {
				continue
			}
			found++
			if ti.NextProcessAt.Before(soon) {
				tb.Errorf("%s's task %s comes due at %s, before the park time", account, ti.ID, ti.NextProcessAt.Format(time.RFC3339Nano))
				return
			}
		}
	}
	if found != n {
		tb.Errorf("%d of %s's %d tasks parked in asynq's scheduled/retry sets", found, account, n)
	}
}
