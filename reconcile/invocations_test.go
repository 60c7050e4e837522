package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// smallBreaker is a circuit breaker that trips after a few failures, so
// that a short outage of the receiver makes Zendesk drop events.
var smallBreaker = zendesktest.Config{
	CircuitWindow:       5 * time.Minute,
	CircuitMinRequests:  10,
	CircuitFailureRatio: 0.7,
	CircuitMaxErrors:    1000,
	CircuitPause:        20 * time.Second,
	NotifyAPIWrites:     true, // deskrelay's own comments come back as webhook calls: the echo to suppress
}

// logBuffer collects a logger's JSON lines.
type logBuffer struct{ testutil.SyncBuffer }

// lines returns the logged lines at level whose message contains msg.
func (l *logBuffer) lines(level, msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if m["level"] == level && strings.Contains(m["message"].(string), msg) {
			out = append(out, m)
		}
	}
	return out
}

func withLog(l *logBuffer) func(*Deps) {
	return func(d *Deps) { d.Log = zerolog.New(l).Level(zerolog.DebugLevel) }
}

// invocationRequests returns the recorded listings of a webhook's invocations.
func invocationRequests(e *env, webhookID string) []zendesktest.RecordedRequest {
	var out []zendesktest.RecordedRequest
	for _, rq := range e.zd.Requests() {
		if rq.Path == "/api/v2/webhooks/"+webhookID+"/invocations" {
			out = append(out, rq)
		}
	}
	return out
}

// forwardable returns the ids of the events in a payload that the sink
// must get (managed ticket, agent, public, not deskrelay's own).
func forwardable(t *testing.T, e *env, payload string) []string {
	t.Helper()
	pl, err := events.ParsePayload([]byte(payload), events.SourceInvocation)
	if err != nil {
		t.Fatalf("fake payload unreadable: %v", err)
	}
	var ids []string
	for _, ev := range pl.Events {
		out, err := e.pub.Check(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if out.Result != events.ResultSkipped {
			ids = append(ids, ev.ID)
		}
	}
	return ids
}

// drainSink deletes the pending delivery tasks, as if the sink had got
// them: their ledger entries stay, as after a real delivery.
func drainSink(t *testing.T, e *env) {
	t.Helper()
	if _, err := e.insp.DeleteAllPendingTasks(queues.Inbound); err != nil {
		t.Fatal(err)
	}
}

func TestInvocations(t *testing.T) {
	t.Run("CircuitBrokenEventsRecoveredOnceInOneRun", func(t *testing.T) {
		e := newEnv(t, smallBreaker)
		rc := newReceiver(t, e.pub)
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded, zendesktest.EventStatusChanged)
		reg := prometheus.NewRegistry()
		r := e.reconciler(t, Config{Interval: time.Minute, WebhookID: hook}, func(d *Deps) { d.Metrics = reg })

		rc.down.Store(true) // the receiver is down long enough to trip the breaker
		want := agentActivity(t, e)
		e.zd.WaitDeliveries()
		rc.down.Store(false)
		if len(want) != 40 {
			t.Fatalf("scenario made %d events, want 40", len(want))
		}
		byStatus := map[string]int{}
		var brokenIDs []string
		for _, inv := range e.zd.Invocations(hook) {
			byStatus[inv.Status]++
			if inv.Status == zendesktest.InvocationCircuitBroken {
				for _, a := range e.zd.Attempts(hook, inv.ID)[:1] {
					brokenIDs = append(brokenIDs, forwardable(t, e, a.Request.Payload)...)
				}
			}
		}
		if byStatus[zendesktest.InvocationCircuitBroken] == 0 || byStatus[zendesktest.InvocationFailed] == 0 || byStatus[zendesktest.InvocationSuccess] != 0 {
			t.Fatalf("fake's invocations by status %v: want failed and circuit broken ones only", byStatus)
		}
		if len(brokenIDs) < 20 {
			t.Fatalf("only %d forwardable events were circuit broken", len(brokenIDs))
		}

		e.clock.Advance(2 * time.Minute) // past the export's lag
		dry, err := r.Backfill(context.Background(), Window{Since: e.clock.Now().Add(-time.Hour)}, Options{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if dry.FromInvocations != 40 || dry.FromTicketEvents != 0 || len(e.sink(t)) != 0 {
			t.Fatalf("dry run: from invocations %d, from ticket events %d, sink %d; want 40, 0, 0", dry.FromInvocations, dry.FromTicketEvents, len(e.sink(t)))
		}

		rep, err := r.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := e.sink(t)
		if !sameSet(got, want) {
			t.Fatalf("sink has %d events %v, want the 40 %v", len(got), sortedKeys(got), want)
		}
		for _, id := range brokenIDs {
			if _, ok := got[id]; !ok {
				t.Errorf("circuit-broken event %s not recovered", id)
			}
		}
		for id, ev := range got {
			if ev.Source != events.SourceInvocation || ev.ConversationID == "" {
				t.Errorf("event %s: source %q conversation %q, want invocation", id, ev.Source, ev.ConversationID)
			}
		}
		ir := rep.Invocations
		if rep.FromInvocations != 40 || rep.FromTicketEvents != 0 || rep.Enqueued != 40 || ir == nil ||
			ir.ByStatus[zendesktest.InvocationCircuitBroken] != byStatus[zendesktest.InvocationCircuitBroken] || ir.Unparseable != 0 {
			t.Fatalf("report: from invocations %d, from ticket events %d, enqueued %d, invocations %+v", rep.FromInvocations, rep.FromTicketEvents, rep.Enqueued, ir)
		}
		// the export found the same 40 in the same run: already delivered
		if rep.AlreadyDelivered < 40 {
			t.Errorf("already delivered %d, want the export's 40 at least", rep.AlreadyDelivered)
		}
		for _, reason := range []string{events.SkipOwnComment, events.SkipEndUser, events.SkipPrivate} {
			if rep.Filtered[reason] == 0 {
				t.Errorf("filtered %v, want some %s", rep.Filtered, reason)
			}
		}
		var sum bytes.Buffer
		rep.WriteSummary(&sum)
		if !strings.Contains(sum.String(), "from invocations 40, from ticket events 0") || !strings.Contains(sum.String(), "circuit broken ") {
			t.Errorf("summary does not split the sources:\n%s", sum.String())
		}
		cp, ok, err := r.readCheckpoint(context.Background(), invocationsCheckpoint)
		if want := ir.Window.Until.Add(-invocationsSettle); err != nil || !ok || !cp.Equal(want) {
			t.Errorf("invocations checkpoint %v %v %v, want %v", cp, ok, err, want)
		}
		if v := gather(t, reg)[`deskrelay_reconcile_invocations_total{result="recovered"}`]; v != float64(ir.Recovered) || v == 0 {
			t.Errorf("recovered metric %v, report %d", v, ir.Recovered)
		}

		// delivered; a backfill over the same hours finds both paths done
		drainSink(t, e)
		attemptsBefore := e.zd.CountRequests("GET", "/api/v2/webhooks/"+hook+"/invocations/")
		again, err := r.Backfill(context.Background(), Window{Since: e.clock.Now().Add(-time.Hour)}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if again.Enqueued != 0 || len(e.sink(t)) != 0 || again.Invocations.AlreadyProcessed != ir.Recovered+ir.NoPayload {
			t.Errorf("backfill after delivery: enqueued %d, sink %d, invocations %+v", again.Enqueued, len(e.sink(t)), again.Invocations)
		}
		if n := e.zd.CountRequests("GET", "/api/v2/webhooks/"+hook+"/invocations/") - attemptsBefore; n != 0 {
			t.Errorf("%d attempts read again for processed invocations", n)
		}
	})

	t.Run("TicketEventsFirstThenInvocationsNotTwice", func(t *testing.T) {
		e := newEnv(t, smallBreaker)
		rc := newReceiver(t, e.pub)
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded, zendesktest.EventStatusChanged)
		rc.down.Store(true)
		want := agentActivity(t, e)
		e.zd.WaitDeliveries()
		e.clock.Advance(2 * time.Minute)
		// a reconciler without the webhook (the export only) runs first
		export := e.reconciler(t, Config{})
		rep, err := export.Backfill(context.Background(), Window{Since: e.clock.Now().Add(-time.Hour)}, Options{})
		if err != nil || rep.FromTicketEvents != 40 || rep.Invocations != nil {
			t.Fatalf("export: %v, from ticket events %d, invocations %+v", err, rep.FromTicketEvents, rep.Invocations)
		}
		drainSink(t, e)
		r := e.reconciler(t, Config{WebhookID: hook})
		rep, err = r.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if rep.Enqueued != 0 || len(e.sink(t)) != 0 || rep.Invocations.Recovered == 0 || rep.AlreadyDelivered < len(want) {
			t.Errorf("invocations after the export: enqueued %d, sink %d, already delivered %d, invocations %+v",
				rep.Enqueued, len(e.sink(t)), rep.AlreadyDelivered, rep.Invocations)
		}
	})

	t.Run("OlderThanSevenDaysNotRequested", func(t *testing.T) {
		e := newEnv(t, smallBreaker)
		rc := newReceiver(t, e.pub)
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded)
		ticket := e.managedTicket(t)
		rc.down.Store(true)
		e.clock.Advance(-8 * 24 * time.Hour)
		old := e.zd.AgentComment(ticket, "eight days ago", true)
		e.clock.Advance(8 * 24 * time.Hour)
		recent := e.zd.AgentComment(ticket, "just now", true)
		invs := e.zd.Invocations(hook)
		if len(invs) != 1 {
			t.Fatalf("fake keeps %d invocations, want the recent one", len(invs))
		}
		e.clock.Advance(2 * time.Minute)
		r := e.reconciler(t, Config{WebhookID: hook})
		// both checkpoints are 9 days old
		nineDays := e.clock.Now().Add(-9 * 24 * time.Hour).Unix()
		for _, k := range []string{keys.Default.ReconcileCheckpoint(), keys.Default.ReconcileInvocationsCheckpoint()} {
			if err := e.rdb.Set(context.Background(), k, nineDays, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := r.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		floor := e.clock.Now().Add(-InvocationRetention)
		reqs := invocationRequests(e, hook)
		if len(reqs) == 0 {
			t.Fatal("invocations not listed")
		}
		for _, rq := range reqs {
			from, err := time.Parse(time.RFC3339, rq.Query.Get("filter[from_ts]"))
			if err != nil || from.Before(floor) {
				t.Errorf("listing asked from %q, before the 7-day window (%s)", rq.Query.Get("filter[from_ts]"), floor.Format(time.RFC3339))
			}
		}
		if !rep.Invocations.Clamped {
			t.Errorf("report does not say the window was clamped: %+v", rep.Invocations)
		}
		got := e.sink(t)
		if got[events.CommentEventID(recent)].Source != events.SourceInvocation {
			t.Errorf("recent comment not recovered from its invocation: %v", sortedKeys(got))
		}
		// the export, not bound by 7 days, still finds the old one
		if got[events.CommentEventID(old)].Source != events.SourceReconcile {
			t.Errorf("old comment not found by the export: %v", sortedKeys(got))
		}
	})

	t.Run("UnparseablePayloadCountedLoggedNotRetried", func(t *testing.T) {
		e := newEnv(t, smallBreaker)
		rc := newReceiver(t, e.pub)
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded)
		ticket := e.managedTicket(t)
		rc.down.Store(true)
		bad := e.zd.AgentComment(ticket, "an admin's custom body", true)
		badInv := e.zd.Invocations(hook)[0].ID
		good := e.zd.AgentComment(ticket, "a real one", true)
		e.clock.Advance(2 * time.Minute)
		logs := &logBuffer{}
		reg := prometheus.NewRegistry()
		zd := &corruptingZendesk{Client: e.zc, invocationID: badInv, payload: `{"say": "hello"}`}
		r := e.reconciler(t, Config{WebhookID: hook}, withLog(logs), func(d *Deps) { d.Zendesk = zd; d.Metrics = reg })
		rep, err := r.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if rep.Invocations.Unparseable != 1 || rep.FromInvocations != 1 {
			t.Fatalf("report: from invocations %d, invocations %+v; want 1 unparseable and 1 recovered", rep.FromInvocations, rep.Invocations)
		}
		got := e.sink(t)
		if got[events.CommentEventID(good)].Source != events.SourceInvocation || got[events.CommentEventID(bad)].Source != events.SourceReconcile {
			t.Errorf("sink %v: want the good one from its invocation, the other from the export", got)
		}
		lines := logs.lines("error", "unreadable")
		if len(lines) != 1 || lines[0]["invocation_id"] != badInv || strings.Contains(lines[0]["error"].(string), "hello") {
			t.Errorf("error log lines %v: want one naming invocation %s, without the body", lines, badInv)
		}
		if v := gather(t, reg)[`deskrelay_reconcile_invocations_total{result="unparseable"}`]; v != 1 {
			t.Errorf("unparseable metric %v, want 1", v)
		}
		// a later run over the same invocations does not read it again
		if err := e.rdb.Set(context.Background(), keys.Default.ReconcileInvocationsCheckpoint(), e.clock.Now().Add(-time.Hour).Unix(), 0).Err(); err != nil {
			t.Fatal(err)
		}
		before := zd.reads.Load()
		e.clock.Advance(time.Minute)
		rep, err = r.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if zd.reads.Load() != before || rep.Invocations.Unparseable != 0 || rep.Invocations.AlreadyProcessed != 2 {
			t.Errorf("second run read attempts %d times, invocations %+v", zd.reads.Load()-before, rep.Invocations)
		}
	})

	t.Run("OverMaxPerRunTheRestIsLeftToTheExport", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		e.zd.DropWebhooks(true) // Zendesk's own incident: every invocation failed, payloads kept
		hook := e.zd.AddWebhook("http://127.0.0.1:1"+WebhookPath, "", zendesktest.EventCommentAdded)
		ticket := e.managedTicket(t)
		var want []string
		for range 12 {
			e.clock.Advance(time.Second)
			want = append(want, events.CommentEventID(e.zd.AgentComment(ticket, "reply", true)))
		}
		e.clock.Advance(2 * time.Minute)
		r := e.reconciler(t, Config{WebhookID: hook, Invocations: InvocationsConfig{MaxPerRun: 5, PageSize: 4}})
		rep, err := r.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ir := rep.Invocations
		if ir.Listed != 12 || ir.Pages != 3 || ir.Recovered != 5 || ir.LeftToExport != 7 || rep.FromInvocations != 5 || rep.FromTicketEvents != 7 {
			t.Errorf("from invocations %d, from ticket events %d, invocations %+v; want 5 read (3 pages of 4), 7 left to the export", rep.FromInvocations, rep.FromTicketEvents, ir)
		}
		if got := e.sink(t); !sameSet(got, want) {
			t.Errorf("sink %v, want %v", sortedKeys(got), want)
		}
		if got := e.zd.CountRequests("GET", "/api/v2/webhooks/"+hook+"/invocations/"); got != 5 {
			t.Errorf("%d attempts read, want 5", got)
		}
		cp, _, _ := r.readCheckpoint(context.Background(), invocationsCheckpoint)
		if want := ir.Window.Until.Add(-invocationsSettle); !cp.Equal(want) {
			t.Errorf("invocations checkpoint %v, want the window's end less the settle time %v", cp, want)
		}
	})

	t.Run("BusyWebhookListsOnlyTheFailedByStatus", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		rc := newScriptedReceiver(t)
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded)
		ticket := e.managedTicket(t)
		var want []string
		for i := range 40 {
			code := http.StatusOK
			if i%10 == 3 {
				code = http.StatusBadGateway
			}
			rc.answer(code)
			e.clock.Advance(time.Second)
			c := e.zd.AgentComment(ticket, "reply", true)
			if code != http.StatusOK {
				want = append(want, events.CommentEventID(c))
			}
		}
		e.clock.Advance(2 * time.Minute)
		r := e.reconciler(t, Config{WebhookID: hook, Invocations: InvocationsConfig{PageSize: 5, ListPages: 2}})
		e.zd.ResetRequests()
		rep, err := r.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ir := rep.Invocations
		if !ir.ByStatusOnly || ir.NotSucceeded != 4 || ir.Recovered != 4 || rep.FromInvocations != 4 {
			t.Errorf("invocations %+v, from invocations %d: want 4 failed found by status", ir, rep.FromInvocations)
		}
		byStatus := map[string]int{}
		for _, rq := range invocationRequests(e, hook) {
			if rq.Query.Get("filter[to_ts]") != "" { // not the guardian's look at the last 5 minutes
				byStatus[rq.Query.Get("filter[status]")]++
			}
		}
		if byStatus[""] != 2 || byStatus["failed"] != 1 || byStatus[zendesktest.InvocationCircuitBroken] != 1 {
			t.Errorf("listings by filter[status] %v: want 2 unfiltered pages, then one per failure status", byStatus)
		}
		got := e.sink(t)
		for _, id := range want {
			if got[id].Source != events.SourceInvocation {
				t.Errorf("%s not recovered from its invocation", id)
			}
		}
	})
}

// corruptingZendesk serves one invocation's attempts with another payload
// (an admin's trigger body that deskrelay cannot read) and counts the
// attempt reads.
type corruptingZendesk struct {
	*zendesk.Client
	invocationID, payload string
	reads                 atomic.Int64
}

func (c *corruptingZendesk) InvocationAttempts(ctx context.Context, webhookID, invocationID string) ([]zendesk.Attempt, error) {
	c.reads.Add(1)
	as, err := c.Client.InvocationAttempts(ctx, webhookID, invocationID)
	if invocationID == c.invocationID {
		for i := range as {
			as[i].Request.Payload = c.payload
		}
	}
	return as, err
}

// scriptedReceiver answers webhook calls with the next status of a script
// (200 after its end).
type scriptedReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	codes []int
}

func newScriptedReceiver(tb testing.TB) *scriptedReceiver {
	tb.Helper()
	s := &scriptedReceiver{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		code := http.StatusOK
		if len(s.codes) > 0 {
			code, s.codes = s.codes[0], s.codes[1:]
		}
		s.mu.Unlock()
		w.WriteHeader(code)
	}))
	tb.Cleanup(s.srv.Close)
	return s
}

func (s *scriptedReceiver) answer(codes ...int) {
	s.mu.Lock()
	s.codes = append(s.codes, codes...)
	s.mu.Unlock()
}

func TestBreakerWarning(t *testing.T) {
	t.Run("WarnsBeforeZendeskTripsNamingStatusCodes", func(t *testing.T) {
		// Zendesk's documented breaker: 70 % of at least 100 requests
		e := newEnv(t, zendesktest.Config{CircuitMinRequests: 100, CircuitFailureRatio: 0.7, CircuitMaxErrors: 1000, CircuitPause: time.Hour})
		rc := newScriptedReceiver(t)
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded)
		ticket := e.managedTicket(t)
		logs := &logBuffer{}
		reg := prometheus.NewRegistry()
		r := e.reconciler(t, Config{WebhookID: hook}, withLog(logs), func(d *Deps) { d.Metrics = reg })
		warnedAt, trippedAt := -1, -1
		var warned WatchState
		for batch := 1; batch <= 12 && trippedAt < 0; batch++ {
			for i := range 10 {
				rc.answer([]int{500, 502}[i%2])
				e.clock.Advance(time.Second)
				e.zd.AgentComment(ticket, "reply", true)
			}
			st, err := r.guardian.check(context.Background(), &budget{}, false)
			if err != nil {
				t.Fatal(err)
			}
			if st.Breaker == nil {
				t.Fatalf("batch %d: no breaker state in %+v", batch, st)
			}
			if st.Breaker.Warning && warnedAt < 0 {
				warnedAt, warned = batch, st
			}
			if e.zd.CircuitOpen(hook) {
				trippedAt = batch
			}
		}
		if warnedAt < 0 || trippedAt < 0 || warnedAt >= trippedAt {
			t.Fatalf("warned after batch %d, Zendesk tripped after batch %d: want a warning first", warnedAt, trippedAt)
		}
		bs := warned.Breaker
		if warnedAt != 5 || bs.Requests != 50 || bs.Failed != 50 || bs.Tripped || bs.StatusCodes["500"] != 25 || bs.StatusCodes["502"] != 25 {
			t.Errorf("warned after batch %d with %+v; want batch 5, 50 of 50 failed, 500 ×25, 502 ×25", warnedAt, bs)
		}
		for _, s := range []string{"500 ×25", "502 ×25", "70%"} {
			if !strings.Contains(bs.Message, s) || !strings.Contains(warned.Reason, s) {
				t.Errorf("message %q / reason %q does not say %q", bs.Message, warned.Reason, s)
			}
		}
		lines := logs.lines("warn", "failing to deliver webhooks")
		if len(lines) == 0 {
			t.Fatal("no warning logged")
		}
		if codes, _ := lines[0]["status_codes"].(map[string]any); codes["500"] != float64(25) || codes["502"] != float64(25) {
			t.Errorf("first warning's status codes %v", lines[0]["status_codes"])
		}
		m := gather(t, reg)
		if m[`deskrelay_webhook_breaker_warnings_total`] == 0 || m[`deskrelay_webhook_failure_ratio{account="default"}`] != 1 || m[`deskrelay_webhook_recent_failures{account="default",zendesk_status="502"}`] == 0 {
			t.Errorf("metrics %v", m)
		}
		// /v1/status shows the last check
		last, ok, err := r.Guardian().LastCheck(context.Background())
		if err != nil || !ok || last.Breaker == nil || !last.Breaker.Warning {
			t.Errorf("last check %+v %v %v: want the breaker warning", last, ok, err)
		}
		// once tripped, events are dropped: an error, saying so
		e.clock.Advance(time.Second)
		e.zd.AgentComment(ticket, "dropped", true)
		st, err := r.guardian.check(context.Background(), &budget{}, false)
		if err != nil || !st.Breaker.Tripped || st.Breaker.CircuitBroken == 0 {
			t.Fatalf("after the trip: %v %+v", err, st.Breaker)
		}
		if len(logs.lines("error", "circuit breaker dropped")) == 0 {
			t.Error("no error logged once the breaker dropped events")
		}
	})

	tests := []struct {
		name        string
		codes       []int // one request each; 200 succeeds
		wantWarning bool
	}{
		{name: "FewRequestsAllFailedDoNotWarn", codes: repeat(40, 503), wantWarning: false},
		{name: "HalfOfFiftyFailedWarns", codes: append(repeat(25, 500), repeat(25, 200)...), wantWarning: true},
		{name: "AThirdOfSixtyFailedDoesNotWarn", codes: append(repeat(20, 500), repeat(40, 200)...), wantWarning: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, zendesktest.Config{})
			rc := newScriptedReceiver(t)
			hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded)
			ticket := e.managedTicket(t)
			r := e.reconciler(t, Config{WebhookID: hook})
			rc.answer(tt.codes...)
			for range tt.codes {
				e.clock.Advance(time.Second)
				e.zd.AgentComment(ticket, "reply", true)
			}
			st, err := r.guardian.check(context.Background(), &budget{}, false)
			if err != nil {
				t.Fatal(err)
			}
			if st.Breaker.Requests != len(tt.codes) || st.Breaker.Warning != tt.wantWarning {
				t.Errorf("breaker %+v, want %d requests, warning %v", st.Breaker, len(tt.codes), tt.wantWarning)
			}
		})
	}

	t.Run("OnlyTheLastFiveMinutesCount", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		rc := newScriptedReceiver(t)
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded)
		ticket := e.managedTicket(t)
		r := e.reconciler(t, Config{WebhookID: hook})
		rc.answer(repeat(60, 500)...)
		for range 60 {
			e.clock.Advance(time.Second)
			e.zd.AgentComment(ticket, "reply", true)
		}
		e.clock.Advance(6 * time.Minute)
		st, err := r.guardian.check(context.Background(), &budget{}, false)
		if err != nil {
			t.Fatal(err)
		}
		if st.Breaker.Requests != 0 || st.Breaker.Warning {
			t.Errorf("breaker %+v: failures older than 5 minutes counted", st.Breaker)
		}
	})
}

func repeat(n, code int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = code
	}
	return out
}

func TestInvocationsTriggerWebhook(t *testing.T) {
	t.Run("CommentNamedByTheTriggerBodyIsReadThroughTheAPI", func(t *testing.T) {
		e := newEnv(t, smallBreaker)
		rc := newReceiver(t, e.pub)
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "") // a trigger webhook: TriggerBody
		ticket := e.managedTicket(t)
		rc.down.Store(true)
		e.clock.Advance(time.Second)
		reply := e.zd.AgentReply(ticket, "we are on it", true, "pending")
		e.clock.Advance(time.Second)
		note := e.zd.AgentComment(ticket, "internal", false)
		e.clock.Advance(time.Second)
		own := e.ownComment(t, ticket)
		e.zd.WaitDeliveries()
		e.clock.Advance(2 * time.Minute)
		r := e.reconciler(t, Config{WebhookID: hook})
		rep, err := r.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := e.sink(t)
		status := e.statusEventIDs(ticket)
		change := status[len(status)-1]
		if _, ok := got[change]; !ok {
			t.Errorf("sink %v lacks the status change %s", sortedKeys(got), change)
		}
		// every trigger body repeats the ticket's status: the later ones are
		// queued too and dropped as unchanged in delivery order (StatusGate)
		for id, ev := range got {
			if ev.Type == events.TypeStatusChanged && (ev.Status != "pending" || ev.TicketID != ticket) {
				t.Errorf("unexpected status event %s", id)
			}
		}
		for _, id := range []int64{note, own} {
			if _, ok := got[events.CommentEventID(id)]; ok {
				t.Errorf("comment %d (a private note or deskrelay's own) forwarded", id)
			}
		}
		c := got[events.CommentEventID(reply)]
		if c.Source != events.SourceInvocation || c.Comment.Body != "we are on it" || c.Comment.Author.Role != events.RoleAgent || c.Comment.Author.Name == "" {
			t.Errorf("recovered comment %+v", c)
		}
		if rep.FromInvocations != len(got) || rep.Invocations.Recovered != 3 || rep.FromTicketEvents != 0 {
			t.Errorf("from invocations %d, invocations %+v", rep.FromInvocations, rep.Invocations)
		}
	})
}

// forbiddenInvocations answers every invocations listing 403, as Zendesk
// does for a token that may not read webhooks.
type forbiddenInvocations struct{ *zendesk.Client }

func (forbiddenInvocations) ListInvocations(context.Context, string, zendesk.InvocationFilter) (*zendesk.InvocationsPage, error) {
	return nil, &zendesk.Error{Op: "list webhook invocations", Status: http.StatusForbidden, Kind: zendesk.KindUnauthorized, Message: "Forbidden"}
}

func TestInvocationsUnreadable(t *testing.T) {
	t.Run("ExportStillRunsAndTheRunSaysWhy", func(t *testing.T) {
		e := newEnv(t, smallBreaker)
		rc := newReceiver(t, e.pub)
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded)
		ticket := e.managedTicket(t)
		rc.down.Store(true)
		c := e.zd.AgentComment(ticket, "reply", true)
		e.clock.Advance(2 * time.Minute)
		r := e.reconciler(t, Config{WebhookID: hook}, func(d *Deps) { d.Zendesk = forbiddenInvocations{e.zc} })
		rep, err := r.RunOnce(context.Background())
		if err != nil {
			t.Fatalf("run failed: %v (the export should have run)", err)
		}
		if got := e.sink(t)[events.CommentEventID(c)]; got.Source != events.SourceReconcile {
			t.Errorf("comment not delivered by the export: %+v", got)
		}
		if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], "recover webhook invocations") || rep.Invocations.Error == "" {
			t.Errorf("errors %v, invocations %+v: want the invocations error", rep.Errors, rep.Invocations)
		}
		if _, ok, _ := r.readCheckpoint(context.Background(), invocationsCheckpoint); ok {
			t.Error("invocations checkpoint moved though nothing was read")
		}
		st, err := r.Guardian().Status(context.Background())
		if err != nil || st.Breaker == nil || !strings.Contains(st.Breaker.Error, "403") {
			t.Errorf("status %v %+v: want the breaker's error", err, st.Breaker)
		}
	})
}

func TestInvocationsConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  InvocationsConfig
		want string // substring of the error; "" means valid
	}{
		{name: "ZeroIsValid", cfg: InvocationsConfig{}},
		{name: "RatioAboveOneNamesTheField", cfg: InvocationsConfig{BreakerWarnRatio: 1.5}, want: "reconcile: Invocations.BreakerWarnRatio:"},
		{name: "NegativeRatioNamesTheField", cfg: InvocationsConfig{BreakerWarnRatio: -0.1}, want: "reconcile: Invocations.BreakerWarnRatio:"},
		{name: "NegativeMinRequestsNamesTheField", cfg: InvocationsConfig{BreakerWarnRequests: -1}, want: "reconcile: Invocations.BreakerWarnRequests:"},
		{name: "NegativeErrorsNamesTheField", cfg: InvocationsConfig{BreakerWarnErrors: -1}, want: "reconcile: Invocations.BreakerWarnErrors:"},
		{name: "NegativeMaxPerRunNamesTheField", cfg: InvocationsConfig{MaxPerRun: -1}, want: "reconcile: Invocations.MaxPerRun:"},
		{name: "PageSizeOverZendesksLimitNamesTheField", cfg: InvocationsConfig{PageSize: 101}, want: "reconcile: Invocations.PageSize:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{Invocations: tt.cfg}.withDefaults().validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// BenchmarkInvocationRecovery recovers the events of a webhook whose every
// call was dropped (circuit broken or failed) during an outage: N agent
// replies on 50 managed tickets, each an invocation whose payload is read
// back (one attempts request each, plus one listing per 100). It reports
// the Zendesk requests per recovered event and the time per event against
// the local fake (no network latency, no account rate limit), and the
// floor that Zendesk's account rate limit sets (at 200 and 700 requests a
// minute, the Team and Enterprise plans) when the reconciler has the whole
// budget.
//
//	go test -run '^$' -bench InvocationRecovery -benchtime 1x ./reconcile/
func BenchmarkInvocationRecovery(b *testing.B) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, zendesktest.Config{})
		e.zd.DropWebhooks(true)
		hook := e.zd.AddWebhook("http://127.0.0.1:1"+WebhookPath, "", zendesktest.EventCommentAdded)
		r := e.reconciler(b, Config{WebhookID: hook, Invocations: InvocationsConfig{MaxPerRun: n}})
		var managed []int64
		for range 50 {
			managed = append(managed, e.managedTicket(b))
		}
		start := e.clock.Now()
		for i := range n {
			e.clock.Advance(time.Second)
			e.zd.AgentComment(managed[i%len(managed)], "reply", true)
		}
		e.clock.Advance(2 * time.Minute)
		e.zd.ResetRequests()
		b.StartTimer()

		t0 := time.Now()
		rep, err := r.Backfill(context.Background(), Window{Since: start}, Options{})
		took := time.Since(t0)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if rep.FromInvocations != n {
			b.Fatalf("recovered %d of %d: %+v", rep.FromInvocations, n, rep.Invocations)
		}
		invReqs := e.zd.CountRequests("GET", "/api/v2/webhooks/")
		b.ReportMetric(float64(n), "events")
		b.ReportMetric(float64(invReqs)/float64(n), "inv_requests/event")
		b.ReportMetric(float64(took.Microseconds())/float64(n), "us/event")
		b.ReportMetric(took.Seconds(), "backfill_s")
		b.ReportMetric(float64(invReqs)/200, "floor_team_min")
		b.ReportMetric(float64(invReqs)/700, "floor_enterprise_min")
		b.ReportMetric(0, "ns/op")
		b.StartTimer()
	}
}

func TestCheckBreaker(t *testing.T) {
	t.Run("RecordsTheWarningForStatusBetweenRuns", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		rc := newScriptedReceiver(t)
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded)
		ticket := e.managedTicket(t)
		r := e.reconciler(t, Config{WebhookID: hook})
		if _, err := r.guardian.check(context.Background(), &budget{}, false); err != nil {
			t.Fatal(err)
		}
		rc.answer(repeat(60, 503)...)
		for range 60 {
			e.clock.Advance(time.Second)
			e.zd.AgentComment(ticket, "reply", true)
		}
		bs, err := r.Guardian().CheckBreaker(context.Background())
		if err != nil || bs == nil || !bs.Warning || bs.StatusCodes["503"] != 60 {
			t.Fatalf("CheckBreaker = %+v, %v; want a warning naming 503 ×60", bs, err)
		}
		last, ok, err := r.Guardian().LastCheck(context.Background())
		if err != nil || !ok || last.State != "active" || last.Breaker == nil || !last.Breaker.Warning || !strings.Contains(last.Reason, "503 ×60") {
			t.Errorf("last check %+v (%v, %v): want the guardian's state with the warning", last, ok, err)
		}
		// what GET /v1/status shows under "reconcile"
		st, err := r.Status(context.Background())
		if err != nil || st.Webhook == nil || st.Webhook.Breaker == nil || !st.Webhook.Breaker.Warning {
			t.Errorf("status %+v, %v: want webhook.breaker with the warning", st, err)
		}
		b, _ := json.Marshal(st)
		if !strings.Contains(string(b), `"breaker":{`) || !strings.Contains(string(b), `"status_codes":{"503":60}`) {
			t.Errorf("status JSON lacks the breaker: %s", b)
		}
	})
	t.Run("NoWebhookNothingToCheck", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		bs, err := e.reconciler(t, Config{}).Guardian().CheckBreaker(context.Background())
		if bs != nil || err != nil {
			t.Errorf("CheckBreaker without a webhook = %+v, %v", bs, err)
		}
	})
}
