package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

func enqueueAll(tb testing.TB, r *relay.Relay, ms []relay.Message) {
	tb.Helper()
	for _, m := range ms {
		mustEnqueue(tb, r, m)
	}
}

func TestOutage(t *testing.T) {
	// The backlog drains as soon as Zendesk answers again, not when each
	// parked task's timer (a minute or more) fires. How soon exactly is a
	// speed goal, measured by BenchmarkFirstDeliveryAfterRecovery (README,
	// "Benchmarks"); this test only tells "at recovery" from "at the timers",
	// with room for a loaded CI machine under -race.
	t.Run("BacklogDrainsOnRecoveryNotOnItsTimers", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.fake.Down()
		want, all := wantBodies(5, 6, "outage")
		enqueueAll(t, e.relay, all)
		ctx := context.Background()
		testutil.WaitFor(t, 20*time.Second, func() bool {
			rep, err := e.relay.Report(ctx)
			return err == nil && rep.Gate.State == relay.GateClosed
		}, "the outage gate to close")
		closedAt := time.Now()
		// While the gate is closed, only probes reach Zendesk.
		testutil.WaitFor(t, 10*time.Second, func() bool {
			return countSince(e.fake, closedAt, func(r zendesktest.RecordedRequest) bool { return r.Path == "/api/v2/users/me" }) >= 2
		}, "two probes")
		if n := countSince(e.fake, closedAt, isWrite); n > 10 {
			t.Errorf("%d writes reached Zendesk while the gate was closed, want at most the in-flight ones (10)", n)
		}
		up := time.Now()
		e.fake.Up()
		waitStatus(t, e.relay, ids(all), "delivered", 30*time.Second)
		checkExactlyOnce(t, e.fake, want)
		var first time.Time
		for _, r := range e.fake.Requests() {
			if isWrite(r) && r.Status < 300 && !r.Time.Before(up) {
				first = r.Time
				break
			}
		}
		if lag := first.Sub(up); first.IsZero() || lag > 10*time.Second {
			t.Errorf("drain started %s after recovery, want at recovery (within 10s), not when the parked tasks' timers fire", lag)
		}
		rep, err := e.relay.Report(ctx)
		if err != nil || rep.Gate.State != relay.GateOpen {
			t.Errorf("gate after recovery = %+v, %v; want open", rep.Gate, err)
		}
	})
}

func isWrite(r zendesktest.RecordedRequest) bool {
	return (r.Method == http.MethodPost || r.Method == http.MethodPut) && strings.HasPrefix(r.Path, "/api/v2/tickets")
}

func countSince(fake *zendesktest.Server, since time.Time, match func(zendesktest.RecordedRequest) bool) int {
	n := 0
	for _, r := range fake.Requests() {
		if !r.Time.Before(since) && match(r) {
			n++
		}
	}
	return n
}

func TestRateLimitStorm(t *testing.T) {
	t.Parallel()
	t.Run("NothingArchivedAndNoAttemptCounted", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.fake.FailNext(15, http.StatusTooManyRequests, zendesktest.RetryAfter(time.Second))
		want, all := wantBodies(3, 4, "storm")
		enqueueAll(t, e.relay, all)
		maxRetried, sawRetry := 0, false
		testutil.WaitFor(t, 60*time.Second, func() bool {
			tasks, _ := e.insp.ListRetryTasks(queues.Outbound)
			for _, ti := range tasks {
				sawRetry = true
				maxRetried = max(maxRetried, ti.Retried)
			}
			for _, id := range ids(all) {
				if st, err := e.relay.Status(context.Background(), id); err != nil || st.Status != "delivered" {
					return false
				}
			}
			return true
		}, "every message delivered through the storm")
		checkExactlyOnce(t, e.fake, want)
		if !sawRetry {
			t.Error("no task ever waited: the storm did not happen")
		}
		if maxRetried != 0 {
			t.Errorf("asynq counted %d retries, want 0 (429 is not a failed attempt)", maxRetried)
		}
		if n := countSince(e.fake, time.Time{}, func(r zendesktest.RecordedRequest) bool { return r.Status == 429 }); n != 15 {
			t.Errorf("Zendesk answered 429 %d times, want 15", n)
		}
		qi, err := e.insp.GetQueueInfo(queues.Outbound)
		if err != nil || qi.Archived != 0 {
			t.Errorf("archived = %+v, %v; want none", qi, err)
		}
		for _, id := range ids(all) {
			if st, _ := e.relay.Status(context.Background(), id); st.Attempts != 1 {
				t.Errorf("%s attempts = %d, want 1", id, st.Attempts)
			}
		}
	})
}

func TestSharedLimiter(t *testing.T) {
	t.Parallel()
	t.Run("WaitsAreNotAttempts", func(t *testing.T) {
		e := newEnv(t, envOptions{rateLimit: 120}) // 2/s, burst 12
		want, all := wantBodies(10, 2, "paced")
		start := time.Now()
		enqueueAll(t, e.relay, all)
		maxRetried, waited := 0, false
		testutil.WaitFor(t, 60*time.Second, func() bool {
			tasks, _ := e.insp.ListRetryTasks(queues.Outbound)
			for _, ti := range tasks {
				waited = true
				maxRetried = max(maxRetried, ti.Retried)
			}
			return delivered(e.relay, ids(all)) == len(all)
		}, "every message delivered at the limiter's pace")
		checkExactlyOnce(t, e.fake, want)
		if elapsed := time.Since(start); elapsed < 3*time.Second {
			t.Errorf("20 requests at 2/s after a burst of 12 took %s, want at least 3s", elapsed)
		}
		if !waited || maxRetried != 0 {
			t.Errorf("waited=%v, max asynq Retried=%d; want waits that count no attempt", waited, maxRetried)
		}
		if got := counterValue(t, e, "deskrelay_outbound_deliveries_total", "delivered"); got != float64(len(all)) {
			t.Errorf("delivered metric = %v, want %d", got, len(all))
		}
	})
}

func TestPerTicketLimit(t *testing.T) {
	t.Parallel()
	t.Run("UpdatesPacedPerTicketInOrder", func(t *testing.T) {
		e := newEnv(t, envOptions{cfg: relay.Config{TicketUpdateLimit: 3, TicketUpdateWindow: 3 * time.Second}})
		want, all := wantBodies(1, 8, "perticket") // 1 create, 7 updates: 3 at once, then 1/s
		start := time.Now()
		enqueueAll(t, e.relay, all)
		waitStatus(t, e.relay, ids(all), "delivered", 30*time.Second)
		if elapsed := time.Since(start); elapsed < 3*time.Second {
			t.Errorf("7 updates of one ticket at 3 per 3s took %s, want at least 3s", elapsed)
		}
		checkExactlyOnce(t, e.fake, want)
		for _, id := range ids(all) {
			if st, _ := e.relay.Status(context.Background(), id); st.Attempts != 1 {
				t.Errorf("%s attempts = %d, want 1 (waits are not attempts)", id, st.Attempts)
			}
		}
	})
}

func TestAmbiguousFailures(t *testing.T) {
	t.Parallel()
	t.Run("TwentyPercentLostResponsesGiveNoDuplicates", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.fake.LoseResponses(0.2)
		want, all := wantBodies(8, 6, "lost")
		enqueueAll(t, e.relay, all)
		waitStatus(t, e.relay, ids(all), "delivered", 60*time.Second)
		checkExactlyOnce(t, e.fake, want)
		lost := countSince(e.fake, time.Time{}, func(r zendesktest.RecordedRequest) bool { return r.Lost })
		if lost == 0 {
			t.Error("no response was lost: the test proved nothing")
		}
		t.Logf("%d responses lost", lost)
	})
	t.Run("LostCreateIsAdoptedNotRepeated", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.fake.LoseNext(1)
		m := msg("lostcreate", 1)
		mustEnqueue(t, e.relay, m)
		waitStatus(t, e.relay, []string{m.ID}, "delivered", 20*time.Second)
		checkExactlyOnce(t, e.fake, map[string][]string{"lostcreate": {m.Body}})
		st, _ := e.relay.Status(context.Background(), m.ID)
		if tk, ok, _ := e.relay.Tickets().TicketOf(context.Background(), "lostcreate"); !ok || tk != st.TicketID {
			t.Errorf("conversation ticket = %d (%v), want %d", tk, ok, st.TicketID)
		}
	})
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	t.Run("FailedThenReplayedInOrder", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		ctx := context.Background()
		e.fake.RevokeCredentials()
		want, all := wantBodies(3, 4, "unauth")
		enqueueAll(t, e.relay, all)
		waitStatus(t, e.relay, ids(all), "failed", 30*time.Second)
		for _, id := range ids(all) {
			st, _ := e.relay.Status(ctx, id)
			if st.Reason != relay.ReasonUnauthorized || st.LastError == "" {
				t.Errorf("%s = %+v, want reason unauthorized with its error", id, st)
			}
		}
		rep, err := e.relay.Report(ctx)
		if err != nil || rep.Failed[relay.ReasonUnauthorized] != len(all) || rep.Queue.Archived != len(all) ||
			rep.Credentials.State != relay.CredentialsUnauthorized {
			t.Errorf("report = %+v, %v; want %d failed unauthorized, archived in asynq, credentials unauthorized", rep, err, len(all))
		}

		var dry bytes.Buffer
		sum, err := e.relay.Replay(ctx, relay.ReplayOptions{DryRun: true, Out: &dry})
		if err != nil || sum.Selected != len(all) || sum.Replayed != 0 || sum.Conversations != 3 {
			t.Fatalf("dry run = %+v, %v; want %d selected, none replayed", sum, err, len(all))
		}
		if st, _ := e.relay.Status(ctx, all[0].ID); st.Status != "failed" {
			t.Fatalf("dry run changed %s to %s", all[0].ID, st.Status)
		}

		e.fake.SetCredentials(e.fake.Email(), e.fake.APIToken())
		var out bytes.Buffer
		sum, err = e.relay.Replay(ctx, relay.ReplayOptions{Reason: relay.ReasonUnauthorized, Out: &out})
		if err != nil || sum.Replayed != len(all) || sum.ByReason[relay.ReasonUnauthorized] != len(all) {
			t.Fatalf("replay = %+v, %v; want %d replayed", sum, err, len(all))
		}
		if !containsAll(out.String(), "replay unauth00-m01", fmt.Sprintf("replayed %d of %d", len(all), len(all))) {
			t.Errorf("replay output:\n%s", out.String())
		}
		waitStatus(t, e.relay, ids(all), "delivered", 30*time.Second)
		checkExactlyOnce(t, e.fake, want)
		testutil.WaitFor(t, 10*time.Second, func() bool {
			rep, err := e.relay.Report(ctx)
			return err == nil && rep.Credentials.State == relay.CredentialsOK
		}, "the credentials probe to see them work")
		rep, err = e.relay.Report(ctx)
		if err != nil || rep.Failed[relay.ReasonUnauthorized] != 0 || rep.Queue.Archived != 0 {
			t.Errorf("report after replay = %+v, %v; want no failed, nothing archived", rep, err)
		}
	})
}

func TestAutoReplay(t *testing.T) {
	t.Parallel()
	t.Run("FixedCredentialsReplayFailedMessages", func(t *testing.T) {
		e := newEnv(t, envOptions{cfg: relay.Config{AutoReplay: true}})
		e.fake.RevokeCredentials()
		want, all := wantBodies(2, 3, "auto")
		enqueueAll(t, e.relay, all)
		waitStatus(t, e.relay, ids(all), "failed", 30*time.Second)
		e.fake.SetCredentials(e.fake.Email(), e.fake.APIToken())
		waitStatus(t, e.relay, ids(all), "delivered", 30*time.Second)
		checkExactlyOnce(t, e.fake, want)
	})
}

func TestTicketLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	deliverOne := func(t *testing.T, e *env, m relay.Message) relay.Status {
		t.Helper()
		mustEnqueue(t, e.relay, m)
		waitStatus(t, e.relay, []string{m.ID}, "delivered", 20*time.Second)
		st, _ := e.relay.Status(ctx, m.ID)
		return st
	}
	t.Run("ClosedTicketGetsFollowUp", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		first := deliverOne(t, e, msg("closed", 1))
		deliverOne(t, e, msg("closed", 2))
		e.fake.CloseTicket(first.TicketID)
		third := deliverOne(t, e, msg("closed", 3))
		fourth := deliverOne(t, e, msg("closed", 4))
		if third.TicketID == first.TicketID || fourth.TicketID != third.TicketID {
			t.Fatalf("tickets = %d, %d, %d; want a follow-up for 3 and 4", first.TicketID, third.TicketID, fourth.TicketID)
		}
		if got := commentBodies(e, third.TicketID); !slices.Equal(got, []string{"closed message 03", "closed message 04"}) {
			t.Errorf("follow-up comments = %q", got)
		}
		var followup bool
		for _, r := range e.fake.Requests() {
			if r.Method == http.MethodPost && r.Path == "/api/v2/tickets" && bytes.Contains(r.Body, []byte(fmt.Sprintf(`"via_followup_source_id":%d`, first.TicketID))) {
				followup = true
			}
		}
		if !followup {
			t.Error("no create request with via_followup_source_id")
		}
	})
	t.Run("DeletedTicketGetsNewTicket", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		first := deliverOne(t, e, msg("deleted", 1))
		e.fake.DeleteTicket(first.TicketID)
		second := deliverOne(t, e, msg("deleted", 2))
		third := deliverOne(t, e, msg("deleted", 3))
		if second.TicketID == first.TicketID || third.TicketID != second.TicketID {
			t.Fatalf("tickets = %d, %d, %d; want a new ticket for 2 and 3", first.TicketID, second.TicketID, third.TicketID)
		}
		if conv, ok, _ := e.relay.Tickets().ConversationOf(ctx, second.TicketID); !ok || conv != "deleted" {
			t.Errorf("new ticket's conversation = %q (%v)", conv, ok)
		}
	})
	t.Run("CommentsAreByRequesterWithMetadataAndRemembered", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		first := deliverOne(t, e, msg("meta", 1))
		second := deliverOne(t, e, msg("meta", 2))
		tk, _ := e.fake.Ticket(first.TicketID)
		cs := e.fake.Comments(first.TicketID)
		if len(cs) != 2 || cs[1].AuthorID != tk.RequesterID || !cs[1].Public || cs[1].Metadata.CustomString(relay.MetadataKey) != second.ID {
			t.Fatalf("comments = %+v; want the second by requester %d, public, with the message id", cs, tk.RequesterID)
		}
		for _, c := range cs {
			if own, _ := e.relay.Tickets().IsOwnComment(ctx, c.ID); !own {
				t.Errorf("comment %d not remembered as deskrelay's own", c.ID)
			}
		}
		if !slices.Contains(tk.Tags, relay.TagDeskrelay) || tk.ExternalID != "meta" || tk.Subject != "meta message 01" {
			t.Errorf("ticket = %+v; want tag deskrelay, external_id meta, subject from the body", tk)
		}
	})
	t.Run("AuthorWithoutEmailBecomesUserByExternalID", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		m := msg("extid", 1)
		m.Author = relay.Author{ID: "platform-user-7", Name: "No Mail"}
		st := deliverOne(t, e, m)
		tk, _ := e.fake.Ticket(st.TicketID)
		u, ok := e.fake.User(tk.RequesterID)
		if !ok || u.ExternalID != "platform-user-7" {
			t.Errorf("requester = %+v (%v); want the user with external id platform-user-7", u, ok)
		}
	})
}

func commentBodies(e *env, ticket int64) []string {
	var out []string
	for _, c := range e.fake.Comments(ticket) {
		out = append(out, c.Body)
	}
	return out
}

func TestOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("InvalidMessageFailsAndConversationMovesOn", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		m1, m2, m3 := msg("invalid", 1), msg("invalid", 2), msg("invalid", 3)
		mustEnqueue(t, e.relay, m1)
		waitStatus(t, e.relay, []string{m1.ID}, "delivered", 20*time.Second)
		e.fake.FailNext(1, http.StatusBadRequest, zendesktest.Matching(http.MethodPut, "/api/v2/tickets/"))
		mustEnqueue(t, e.relay, m2)
		mustEnqueue(t, e.relay, m3)
		waitStatus(t, e.relay, []string{m3.ID}, "delivered", 20*time.Second)
		st, _ := e.relay.Status(ctx, m2.ID)
		if st.Status != "failed" || st.Reason != relay.ReasonInvalid || !strings.Contains(st.LastError, "400") {
			t.Errorf("m2 = %+v; want failed invalid with Zendesk's error", st)
		}
		checkExactlyOnce(t, e.fake, map[string][]string{"invalid": {m1.Body, m3.Body}})
	})
	t.Run("GapIsWaitedForThenSkipped", func(t *testing.T) {
		e := newEnv(t, envOptions{cfg: relay.Config{OrderGapTimeout: time.Second}})
		m1, m2, m3 := msg("gap", 1), msg("gap", 2), msg("gap", 3)
		mustEnqueue(t, e.relay, m1)
		waitStatus(t, e.relay, []string{m1.ID}, "delivered", 20*time.Second)
		start := time.Now()
		mustEnqueue(t, e.relay, m3)
		waitStatus(t, e.relay, []string{m3.ID}, "delivered", 20*time.Second)
		if waited := time.Since(start); waited < time.Second {
			t.Errorf("message 3 delivered after %s, want it to wait the gap timeout (1s) for message 2", waited)
		}
		mustEnqueue(t, e.relay, m2) // late: delivered, after 3
		waitStatus(t, e.relay, []string{m2.ID}, "delivered", 20*time.Second)
		checkExactlyOnce(t, e.fake, map[string][]string{"gap": {m1.Body, m3.Body, m2.Body}})
	})
	t.Run("WithoutSequenceArrivalOrder", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		var want []string
		var all []string
		for i := 1; i <= 6; i++ {
			m := msg("noseq", i)
			m.Sequence = nil
			mustEnqueue(t, e.relay, m)
			want, all = append(want, m.Body), append(all, m.ID)
		}
		waitStatus(t, e.relay, all, "delivered", 20*time.Second)
		checkExactlyOnce(t, e.fake, map[string][]string{"noseq": want})
	})
	t.Run("StuckConversationDoesNotDelayOthers", func(t *testing.T) {
		e := newEnv(t, envOptions{cfg: relay.Config{OrderGapTimeout: time.Hour}})
		stuck := msg("stuck", 2) // waits for 1 for an hour
		mustEnqueue(t, e.relay, stuck)
		want, all := wantBodies(4, 3, "free")
		enqueueAll(t, e.relay, all)
		waitStatus(t, e.relay, ids(all), "delivered", 20*time.Second)
		if st, _ := e.relay.Status(ctx, stuck.ID); st.Status != "queued" {
			t.Errorf("stuck message = %+v, want still queued", st)
		}
		checkExactlyOnce(t, e.fake, want)
	})
}

func TestTwoRelaysRaceOneConversation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	other := e.newRelay(envOptions{})
	e.fake.SetLatency(5 * time.Millisecond)
	want, all := wantBodies(1, 20, "race")
	var wg sync.WaitGroup
	for i, m := range all {
		r := e.relay
		if i%2 == 1 {
			r = other
		}
		wg.Add(1)
		go func() { defer wg.Done(); mustEnqueue(t, r, m) }()
	}
	wg.Wait()
	waitStatus(t, e.relay, ids(all), "delivered", 60*time.Second)
	checkExactlyOnce(t, e.fake, want)
	if n := e.fake.CountRequests(http.MethodPost, "/api/v2/tickets"); n != 1 {
		t.Errorf("%d ticket creations, want 1", n)
	}
}

func TestSelfHealing(t *testing.T) {
	t.Parallel()
	t.Run("LostTaskOfTheHeadIsRecreated", func(t *testing.T) {
		e := newEnv(t, envOptions{noWorkers: true})
		m1, m2 := msg("heal", 1), msg("heal", 2)
		mustEnqueue(t, e.relay, m1)
		mustEnqueue(t, e.relay, m2)
		if err := e.insp.DeleteTask(queues.Outbound, "msg{"+m1.ID+"}"); err != nil {
			t.Fatalf("delete task: %v", err)
		}
		startWorkers(t, e.opt, e.relay, 4, time.Second)
		waitStatus(t, e.relay, []string{m1.ID, m2.ID}, "delivered", 20*time.Second)
		checkExactlyOnce(t, e.fake, map[string][]string{"heal": {m1.Body, m2.Body}})
	})
}

// TestChaos mixes every fault at once across two relays: lost responses,
// an outage, a 429 storm and closed tickets; the guarantees still hold.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("mixed-fault run")
	}
	t.Parallel()
	// Mixed faults on 80 messages, not pacing (TestUpdateTicketPace,
	// TestRateLimitStorm cover that): at Zendesk's real limits the 70
	// updates alone take a minute of the 90 seconds this test waits.
	e := newEnv(t, envOptions{unlimited: true})
	other := e.newRelay(envOptions{})
	e.fake.SetLatency(2 * time.Millisecond)
	e.fake.LoseResponses(0.15)
	want, all := wantBodies(10, 8, "chaos")
	half := len(all) / 2
	parallel(8, half, func(i int) {
		r := e.relay
		if i%2 == 1 {
			r = other
		}
		mustEnqueue(t, r, all[i])
	})
	testutil.WaitFor(t, 30*time.Second, func() bool { return delivered(e.relay, ids(all)) >= 10 }, "some deliveries")
	e.fake.Down()
	parallel(8, len(all)-half, func(i int) { mustEnqueue(t, other, all[half+i]) })
	testutil.WaitFor(t, 20*time.Second, func() bool {
		rep, err := e.relay.Report(context.Background())
		return err == nil && rep.Gate.State == relay.GateClosed
	}, "the outage gate to close")
	e.fake.FailNext(10, http.StatusTooManyRequests, zendesktest.RetryAfter(time.Second))
	e.fake.Up()
	waitStatus(t, e.relay, ids(all), "delivered", 90*time.Second)
	e.fake.LoseResponses(0)
	checkExactlyOnce(t, e.fake, want)
}
