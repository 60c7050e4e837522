package reconcile

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// agentActivity makes the scenario on the fake: on 5 managed
// tickets, 30 public agent comments and 10 status changes, plus what must
// not be forwarded (deskrelay's own comments, an end user's reply, a
// private note) and activity on 2 unmanaged tickets. It returns the ids of
// the 40 events the sink must get. The clock moves a second between
// actions, so the events spread over many export seconds.
func agentActivity(t *testing.T, e *env) []string {
	t.Helper()
	var want []string
	var managed []int64
	for range 5 {
		managed = append(managed, e.managedTicket(t))
	}
	other := []int64{e.unmanagedTicket(t), e.unmanagedTicket(t)}
	statuses := []string{"pending", "open"}
	for i, id := range managed {
		for j := range 6 {
			e.clock.Advance(time.Second)
			c := e.zd.AgentComment(id, "agent reply", true)
			want = append(want, events.CommentEventID(c))
			if j == 2 || j == 5 {
				e.clock.Advance(time.Second)
				e.zd.SetStatus(id, statuses[(j/3+i)%2])
			}
		}
		want = append(want, e.statusEventIDs(id)...)
	}
	e.clock.Advance(time.Second)
	e.ownComment(t, managed[0])
	e.ownComment(t, managed[1])
	e.zd.EndUserComment(managed[2], "thanks") // may reopen: a status change too
	want = append(want, e.statusEventIDs(managed[2])[2:]...)
	e.zd.AgentComment(managed[3], "internal note", false)
	for _, id := range other {
		e.zd.AgentComment(id, "not ours", true)
		e.zd.SetStatus(id, "pending")
	}
	return want
}

func TestRunOnce(t *testing.T) {
	t.Run("DroppedWebhookEventsReachTheSinkOnce", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		rc := newReceiver(t, e.pub)
		e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded, zendesktest.EventStatusChanged)
		e.zd.DropWebhooks(true)
		reg := prometheus.NewRegistry()
		r := e.reconciler(t, Config{Interval: time.Minute}, func(d *Deps) { d.Metrics = reg })
		start := e.clock.Now()
		if _, err := r.RunOnce(context.Background()); err != nil { // sets the checkpoint before the activity
			t.Fatal(err)
		}
		e.clock.Advance(2 * time.Minute)
		want := agentActivity(t, e)
		if n := len(want); n != 40 {
			t.Fatalf("scenario made %d events, want 40", n)
		}
		e.clock.Advance(2 * time.Minute)

		rep, err := r.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := e.sink(t)
		if !sameSet(got, want) {
			t.Fatalf("sink has %d events %v, want the 40 %v", len(got), sortedKeys(got), want)
		}
		for id, ev := range got {
			if ev.Source != events.SourceReconcile || ev.ConversationID == "" {
				t.Errorf("event %s: source %q conversation %q", id, ev.Source, ev.ConversationID)
			}
			if ev.Type == events.TypeCommentAdded && (ev.Comment.Author.Role != events.RoleAgent || ev.Comment.Author.Name == "") {
				t.Errorf("event %s: author %+v", id, ev.Comment.Author)
			}
		}
		if rep.Enqueued != 40 || rep.TicketsSkipped != 2 || rep.TicketsScanned != 7 || !rep.Complete {
			t.Errorf("report %+v", rep)
		}
		for _, reason := range []string{events.SkipOwnComment, events.SkipEndUser, events.SkipPrivate} {
			if rep.Filtered[reason] == 0 {
				t.Errorf("report filtered %v, want some %s", rep.Filtered, reason)
			}
		}
		if cp, ok, _ := r.Checkpoint(context.Background()); !ok || cp.Before(start) {
			t.Errorf("checkpoint %v, %v", cp, ok)
		}
		if n := e.zd.CountRequests("GET", "/api/v2/users/"); n != 2 {
			t.Errorf("%d user lookups, want 2 (the agent and one requester, cached)", n)
		}

		e.clock.Advance(2 * time.Minute)
		rep2, err := r.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if rep2.Enqueued != 0 || len(e.sink(t)) != 40 {
			t.Errorf("second run enqueued %d; sink %d", rep2.Enqueued, len(e.sink(t)))
		}
		metrics := gather(t, reg)
		for name, want := range map[string]float64{
			`deskrelay_reconcile_runs_total{account="default",outcome="ok"}`: 3,
			`deskrelay_reconcile_gaps_found_total`:                           40,
			`deskrelay_reconcile_events_total{result="enqueued"}`:            40,
		} {
			if got := metrics[name]; got != want {
				t.Errorf("%s = %v, want %v", name, got, want)
			}
		}
		if age := metrics[`deskrelay_reconcile_checkpoint_age_seconds{account="default"}`]; age < 90 || age > 200 {
			t.Errorf("checkpoint age %v s, want about the lag", age)
		}
	})

	t.Run("WebhookFirstIsNotDeliveredTwice", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		rc := newReceiver(t, e.pub)
		e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded, zendesktest.EventStatusChanged)
		r := e.reconciler(t, Config{})
		want := agentActivity(t, e)
		got := e.sink(t)
		if !sameSet(got, want) {
			t.Fatalf("webhook path delivered %d events, want %d: %v", len(got), len(want), sortedKeys(got))
		}
		e.clock.Advance(2 * time.Minute)
		rep, err := r.Backfill(context.Background(), Window{Since: e.clock.Now().Add(-time.Hour)}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Enqueued != 0 || rep.AlreadyDelivered != 40 {
			t.Errorf("reconciler enqueued %d, already delivered %d; want 0 and 40", rep.Enqueued, rep.AlreadyDelivered)
		}
		for id, ev := range e.sink(t) {
			if ev.Source != events.SourceWebhook {
				t.Errorf("event %s came from %s", id, ev.Source)
			}
		}
	})
}

func TestBackfill(t *testing.T) {
	t.Run("DryRunChangesNothingAndCountsWhatTheRunApplies", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		r := e.reconciler(t, Config{})
		want := agentActivity(t, e)
		// a ticket going back and forth: the dry run must follow the
		// status gate as the real run moves it
		id := e.managedTicket(t)
		for _, s := range []string{"pending", "open", "pending", "pending", "solved"} {
			e.clock.Advance(time.Second)
			e.zd.SetStatus(id, s)
		}
		e.clock.Advance(2 * time.Minute)
		var progress bytes.Buffer
		w := Window{Since: e.clock.Now().Add(-time.Hour)}
		dry, err := r.Backfill(context.Background(), w, Options{DryRun: true, Progress: &progress})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(e.sink(t)); n != 0 {
			t.Fatalf("dry run queued %d events", n)
		}
		if n, _ := e.rdb.Keys(context.Background(), keys.Default.Prefix()+"ledger:*").Result(); len(n) != 0 {
			t.Fatalf("dry run wrote ledger keys %v", n)
		}
		if _, ok, _ := r.Checkpoint(context.Background()); ok {
			t.Fatal("dry run set the checkpoint")
		}
		if !strings.Contains(progress.String(), "page 1:") {
			t.Errorf("progress %q", progress.String())
		}
		realRun, err := r.Backfill(context.Background(), w, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if dry.Enqueued != realRun.Enqueued || dry.EventsFound != realRun.EventsFound || dry.AlreadyDelivered != realRun.AlreadyDelivered ||
			dry.TicketsSkipped != realRun.TicketsSkipped || len(dry.Filtered) != len(realRun.Filtered) {
			t.Fatalf("dry run %+v\nreal run %+v", dry, realRun)
		}
		for k, v := range realRun.Filtered {
			if dry.Filtered[k] != v {
				t.Errorf("filtered %s: dry %d, realRun %d", k, dry.Filtered[k], v)
			}
		}
		if n := len(e.sink(t)); n != realRun.Enqueued || n != len(want)+4 { // pending, open, pending, solved: the repeated pending is no change
			t.Errorf("sink %d, realRun enqueued %d, want %d", n, realRun.Enqueued, len(want)+4)
		}
		var sum bytes.Buffer
		realRun.WriteSummary(&sum)
		if !strings.Contains(sum.String(), "enqueued now") {
			t.Errorf("summary %q", sum.String())
		}
	})

	t.Run("BadWindowsAreClearErrors", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		r := e.reconciler(t, Config{})
		now := e.clock.Now()
		tests := []struct {
			name string
			w    Window
			want string
		}{
			{name: "UntilBeforeSince", w: Window{Since: now.Add(-time.Hour), Until: now.Add(-2 * time.Hour)}, want: "before --since"},
			{name: "SinceInTheFuture", w: Window{Since: now.Add(time.Hour)}, want: "in the future"},
			{name: "SinceTooRecent", w: Window{Since: now.Add(-10 * time.Second)}, want: "window is empty"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := r.Backfill(context.Background(), tt.w, Options{})
				if !errors.Is(err, ErrBadWindow) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err %v, want ErrBadWindow with %q", err, tt.want)
				}
			})
		}
		if n := e.zd.CountRequests("", "/api/v2/"); n != 0 {
			t.Errorf("bad windows made %d requests", n)
		}
	})
}
