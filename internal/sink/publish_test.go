package sink_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/internal/tickets"
)

var t0 = time.Date(2026, 11, 24, 10, 5, 0, 0, time.UTC)

type fixture struct {
	db      *redistest.DB
	tickets *tickets.Tickets
	pub     *sink.Publisher
	insp    *asynq.Inspector
}

func newFixture(t *testing.T, cfg sink.PublisherConfig) *fixture {
	t.Helper()
	db := redistest.New(t)
	tickets := tickets.New(db.Client)
	ctx := context.Background()
	if err := tickets.Link(ctx, "conv_42", 1001); err != nil {
		t.Fatal(err)
	}
	if err := tickets.RememberOwnComment(ctx, 777); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	return &fixture{db: db, tickets: tickets, pub: sink.NewPublisher(db.Client, tickets, cfg), insp: insp}
}

func comment(ticket, id int64, role string, public bool, at time.Time) events.Event {
	return events.NewCommentEvent(ticket, "open", events.Comment{ID: id, Body: "b", Public: public,
		Author: events.Author{ID: 9, Role: role}, CreatedAt: at}, events.SourceReconcile)
}

func TestPublishRules(t *testing.T) {
	tests := []struct {
		name           string
		forwardPrivate bool
		ev             events.Event
		want           string
	}{
		{"PublicAgentCommentEnqueued", false, comment(1001, 1, events.RoleAgent, true, t0), "enqueued"},
		{"UnmanagedTicketSkipped", false, comment(2002, 1, events.RoleAgent, true, t0), "skipped: unmanaged"},
		{"OwnCommentSkipped", false, comment(1001, 777, events.RoleAgent, true, t0), "skipped: own_comment"},
		{"EndUserCommentSkipped", false, comment(1001, 1, events.RoleEndUser, true, t0), "skipped: end_user"},
		{"PrivateNoteSkipped", false, comment(1001, 1, events.RoleAgent, false, t0), "skipped: private"},
		{"PrivateNoteForwardedWhenAsked", true, comment(1001, 1, events.RoleAgent, false, t0), "enqueued"},
		{"NewStatusSkipped", false, events.NewStatusEvent(1001, "NEW", t0, events.SourceWebhook), "skipped: initial_status"},
		{"StatusEnqueued", false, events.NewStatusEvent(1001, "PENDING", t0, events.SourceWebhook), "enqueued"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, sink.PublisherConfig{ForwardPrivate: tt.forwardPrivate})
			ctx := context.Background()
			check, err := f.pub.Check(ctx, tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			out, err := f.pub.Publish(ctx, tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want || check.String() != tt.want {
				t.Fatalf("Publish %q, Check %q, want %q", out, check, tt.want)
			}
			_, err = f.insp.GetTaskInfo(queues.Inbound, sink.DeliverTaskID(tt.ev.ID))
			if queued := err == nil; queued != (tt.want == "enqueued") {
				t.Fatalf("task exists = %v (err %v), want %v", queued, err, tt.want == "enqueued")
			}
		})
	}
}

func TestPublishDedupe(t *testing.T) {
	f := newFixture(t, sink.PublisherConfig{})
	ctx := context.Background()
	ev := comment(1001, 5, events.RoleAgent, true, t0)
	first, err := f.pub.Publish(ctx, ev)
	if err != nil || first.Result != events.ResultEnqueued {
		t.Fatalf("first: %v %v", first, err)
	}
	if first.Event.ConversationID != "conv_42" {
		t.Fatalf("conversation %q", first.Event.ConversationID)
	}
	ev.Source = events.SourceWebhook // the same event from the other path
	again, err := f.pub.Publish(ctx, ev)
	if err != nil || again.String() != "duplicate: ledger" {
		t.Fatalf("again: %v %v", again, err)
	}
	// the ledger entry lost (e.g. crash before marking): the task id still dedupes
	if err := f.db.Client.Del(ctx, keys.Default.EventLedger(ev.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	third, err := f.pub.Publish(ctx, ev)
	if err != nil || third.String() != "duplicate: task" {
		t.Fatalf("third: %v %v", third, err)
	}
	if seen, err := f.pub.Ledger().Seen(ctx, ev.ID); err != nil || !seen {
		t.Fatalf("ledger not repaired: %v %v", seen, err)
	}
	n, err := f.db.Client.ZCard(ctx, keys.Default.InboundOrder("conv_42")).Result()
	if err != nil || n != 1 {
		t.Fatalf("order set has %d entries (%v), want 1", n, err)
	}
	ttl, err := f.db.Client.TTL(ctx, keys.Default.EventLedger(ev.ID)).Result()
	if err != nil || ttl < 13*24*time.Hour {
		t.Fatalf("ledger TTL %s (%v), want about 14 days", ttl, err)
	}
}

// deliver runs the delivery-time half of the status rule, as the sink
// delivery task does, and says what happened.
func deliver(t *testing.T, f *fixture, ev events.Event) string {
	t.Helper()
	ctx := context.Background()
	skip, err := f.pub.StatusGate(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if skip != "" {
		return "dropped: " + skip
	}
	if err := f.pub.StatusDelivered(ctx, ev); err != nil {
		t.Fatal(err)
	}
	return "delivered"
}

func TestStatusRule(t *testing.T) {
	f := newFixture(t, sink.PublisherConfig{})
	ctx := context.Background()
	steps := []struct {
		name   string
		status string
		at     time.Time
		want   string
	}{
		{"FirstChangeDelivered", "open", t0, "delivered"},
		{"SameStatusLaterDropped", "open", t0.Add(time.Minute), "dropped: unchanged_status"},
		{"OlderChangeSkippedStale", "pending", t0.Add(30 * time.Second), "skipped: stale_status"},
		{"NewerChangeDelivered", "solved", t0.Add(2 * time.Minute), "delivered"},
		{"SameEventAgainDuplicate", "solved", t0.Add(2 * time.Minute), "duplicate: ledger"},
		{"BackToOpenDelivered", "open", t0.Add(3 * time.Minute), "delivered"},
	}
	for _, s := range steps {
		ev := events.NewStatusEvent(1001, s.status, s.at, events.SourceReconcile)
		out, err := f.pub.Publish(ctx, ev)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got := out.String()
		if out.Result == events.ResultEnqueued {
			got = deliver(t, f, out.Event)
		}
		if got != s.want {
			t.Fatalf("%s: got %q, want %q", s.name, got, s.want)
		}
	}
}

// TestStatusRuleInFlight: changes published before the earlier ones are
// delivered are judged in delivery order, not in publishing order.
func TestStatusRuleInFlight(t *testing.T) {
	f := newFixture(t, sink.PublisherConfig{})
	ctx := context.Background()
	pending := events.NewStatusEvent(1001, "pending", t0, events.SourceWebhook)
	open := events.NewStatusEvent(1001, "open", t0.Add(time.Second), events.SourceWebhook)
	pendingAgain := events.NewStatusEvent(1001, "pending", t0.Add(2*time.Second), events.SourceWebhook)
	for _, ev := range []events.Event{pending, open, pendingAgain} {
		out, err := f.pub.Publish(ctx, ev)
		if err != nil || out.Result != events.ResultEnqueued {
			t.Fatalf("publish %s: %v %v", ev.ID, out, err)
		}
	}
	for _, ev := range []events.Event{pending, open, pendingAgain} {
		if got := deliver(t, f, ev); got != "delivered" {
			t.Fatalf("%s: %s, want delivered", ev.ID, got)
		}
	}
}

func TestPublishInvalid(t *testing.T) {
	f := newFixture(t, sink.PublisherConfig{})
	_, err := f.pub.Publish(context.Background(), events.Event{Type: events.TypeCommentAdded, TicketID: 1001, Source: events.SourceWebhook})
	if err == nil {
		t.Fatal("want an error for an event without a comment")
	}
}

// TestPublishedKeysExpire: every key the publisher writes named after an
// event, ticket or conversation carries the retention.
func TestPublishedKeysExpire(t *testing.T) {
	const retention = 3 * time.Hour
	f := newFixture(t, sink.PublisherConfig{LedgerRetention: retention})
	ctx := context.Background()
	ev := events.NewStatusEvent(1001, "PENDING", t0, events.SourceWebhook)
	if _, err := f.pub.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{keys.Default.EventLedger(ev.ID), keys.Default.InboundOrder("conv_42")} {
		ttl, err := f.db.Client.TTL(ctx, k).Result()
		if err != nil || ttl <= retention-time.Minute || ttl > retention {
			t.Errorf("%s: TTL %s (%v), want within (%s, %s]", k, ttl, err, retention-time.Minute, retention)
		}
	}
}
