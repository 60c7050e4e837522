package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/tickets"
)

var t0 = time.Date(2026, 11, 24, 10, 5, 0, 0, time.UTC)

func TestEventIDs(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"Comment", events.CommentEventID(123456), "zd:comment:123456"},
		{"StatusLowerCase", events.StatusEventID(1001, "PENDING", t0), "zd:status:1001:pending:1795514700"},
		{"StatusCapitalised", events.StatusEventID(1001, "Pending", t0.Add(900*time.Millisecond)), "zd:status:1001:pending:1795514700"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestEventJSON(t *testing.T) {
	ev := events.NewCommentEvent(1001, "PENDING", events.Comment{
		ID: 123456, Body: "b", HTMLBody: "<p>b</p>", Public: true,
		Author: events.Author{ID: 9, Name: "Agent Smith", Role: events.RoleAgent}, CreatedAt: t0,
	}, events.SourceWebhook)
	ev.ConversationID = "conv_42"
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"ticket.comment_added","id":"zd:comment:123456","conversation_id":"conv_42","ticket_id":1001,"status":"pending",` +
		`"comment":{"id":123456,"body":"b","html_body":"\u003cp\u003eb\u003c/p\u003e","public":true,"author":{"id":9,"name":"Agent Smith","role":"agent"},"created_at":"2026-11-24T10:05:00Z"},` +
		`"occurred_at":"2026-11-24T10:05:00Z","source":"webhook"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

const commentEnvelope = `{"account_id":123456,"id":"f1e2","subject":"zen:ticket:1001","time":"2026-11-24T10:05:00Z",
"type":"zen:event-type:ticket.comment_added","zendesk_event_version":"2022-11-06",
"detail":{"id":"1001","external_id":"conv_42","status":"OPEN","requester_id":"77","subject":"s","updated_at":"2026-11-24T10:05:00Z","via":{"channel":"web"}},
"event":{"comment":{"id":555,"body":"hello","is_public":true,"author":{"id":"9","is_staff":true,"name":"Agent Smith"}}}}`

const statusEnvelope = `{"account_id":123456,"id":"f1e3","subject":"zen:ticket:1001","time":"2026-11-24T10:06:00Z",
"type":"zen:event-type:ticket.status_changed","detail":{"id":"1001","external_id":"conv_42","status":"PENDING","updated_at":"2026-11-24T10:06:00Z"},
"event":{"current":"PENDING","previous":"OPEN"}}`

func TestParsePayload(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		wantErr     string // substring; empty: no error
		wantIgnored bool
		wantIDs     []string
		wantComment int64 // trigger comment ref
	}{
		{name: "EnvelopeComment", body: commentEnvelope, wantIDs: []string{"zd:comment:555"}},
		{name: "EnvelopeStatus", body: statusEnvelope, wantIDs: []string{"zd:status:1001:pending:1795514760"}},
		{name: "EnvelopeIgnoredType", body: `{"type":"zen:event-type:ticket.priority_changed","detail":{"id":"1"}}`, wantIgnored: true},
		{name: "EnvelopeCommentIDAsString", body: strings.Replace(commentEnvelope, `"id":555`, `"id":"555"`, 1), wantIDs: []string{"zd:comment:555"}},
		{name: "Trigger", body: `{"ticket_id":"1001","external_id":"conv_42","status":"Pending","updated_at":"2026-11-24T10:06:00Z","comment_id":"555","comment_public":"true","comment_author_id":"9"}`,
			wantIDs: []string{"zd:status:1001:pending:1795514760"}, wantComment: 555},
		{name: "TriggerNoComment", body: `{"ticket_id":"1001","status":"Open","updated_at":"2026-11-24T10:06:00Z","comment_id":""}`,
			wantIDs: []string{"zd:status:1001:open:1795514760"}},
		{name: "TriggerNumbers", body: `{"ticket_id":1001,"status":"Open","updated_at":"2026-11-24T10:06:00Z","comment_id":555}`,
			wantIDs: []string{"zd:status:1001:open:1795514760"}, wantComment: 555},
		{name: "NotJSON", body: `not json`, wantErr: "not a JSON object"},
		{name: "Empty", body: ``, wantErr: "empty body"},
		{name: "Array", body: `[1,2]`, wantErr: "not a JSON object"},
		{name: "Trailing", body: `{"ticket_id":"1"} {}`, wantErr: "trailing"},
		{name: "NeitherFormat", body: `{"say":"hello"}`, wantErr: "neither"},
		{name: "TriggerBadTicket", body: `{"ticket_id":"{{ticket.id}}"}`, wantErr: "ticket_id"},
		{name: "TriggerBadTime", body: `{"ticket_id":"1","status":"Open","updated_at":"yesterday"}`, wantErr: "updated_at"},
		{name: "TriggerBadPublic", body: `{"ticket_id":"1","comment_id":"2","comment_public":"maybe"}`, wantErr: "comment_public"},
		{name: "EnvelopeNoTicket", body: `{"type":"zen:event-type:ticket.comment_added","detail":{},"event":{"comment":{"id":1}}}`, wantErr: "detail.id"},
		{name: "EnvelopeNoComment", body: `{"type":"zen:event-type:ticket.comment_added","time":"2026-11-24T10:05:00Z","detail":{"id":"1"},"event":{}}`, wantErr: "comment.id"},
		{name: "EnvelopeNoCurrent", body: `{"type":"zen:event-type:ticket.status_changed","time":"2026-11-24T10:05:00Z","detail":{"id":"1"},"event":{}}`, wantErr: "event.current"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := events.ParsePayload([]byte(tt.body), events.SourceWebhook)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, events.ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrMalformed containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if p.Ignored != tt.wantIgnored {
				t.Fatalf("Ignored = %v, want %v", p.Ignored, tt.wantIgnored)
			}
			var ids []string
			for _, ev := range p.Events {
				if err := ev.Validate(); err != nil {
					t.Fatalf("event %s invalid: %v", ev.ID, err)
				}
				ids = append(ids, ev.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
				t.Fatalf("events %v, want %v", ids, tt.wantIDs)
			}
			var gotComment int64
			if p.Comment != nil {
				gotComment = p.Comment.ID
			}
			if gotComment != tt.wantComment {
				t.Fatalf("comment ref %d, want %d", gotComment, tt.wantComment)
			}
		})
	}
}

func TestParseEnvelopeComment(t *testing.T) {
	p, err := events.ParsePayload([]byte(commentEnvelope), events.SourceInvocation)
	if err != nil {
		t.Fatal(err)
	}
	ev := p.Events[0]
	want := events.Comment{ID: 555, Body: "hello", Public: true, Author: events.Author{ID: 9, Name: "Agent Smith", Role: events.RoleAgent}, CreatedAt: t0}
	if *ev.Comment != want || ev.Status != "open" || ev.TicketID != 1001 || ev.Source != events.SourceInvocation || !ev.OccurredAt.Equal(t0) {
		t.Fatalf("got %+v comment %+v", ev, *ev.Comment)
	}
}

type fixture struct {
	db      *redistest.DB
	tickets *tickets.Tickets
	pub     *events.Publisher
	insp    *asynq.Inspector
}

func newFixture(t *testing.T, cfg events.PublisherConfig) *fixture {
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
	return &fixture{db: db, tickets: tickets, pub: events.NewPublisher(db.Client, tickets, cfg), insp: insp}
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
			f := newFixture(t, events.PublisherConfig{ForwardPrivate: tt.forwardPrivate})
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
			_, err = f.insp.GetTaskInfo(queues.Inbound, events.DeliverTaskID(tt.ev.ID))
			if queued := err == nil; queued != (tt.want == "enqueued") {
				t.Fatalf("task exists = %v (err %v), want %v", queued, err, tt.want == "enqueued")
			}
		})
	}
}

func TestPublishDedupe(t *testing.T) {
	f := newFixture(t, events.PublisherConfig{})
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
	if err := f.db.Client.Del(ctx, keys.EventLedger(ev.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	third, err := f.pub.Publish(ctx, ev)
	if err != nil || third.String() != "duplicate: task" {
		t.Fatalf("third: %v %v", third, err)
	}
	if seen, err := f.pub.Ledger().Seen(ctx, ev.ID); err != nil || !seen {
		t.Fatalf("ledger not repaired: %v %v", seen, err)
	}
	n, err := f.db.Client.ZCard(ctx, keys.InboundOrder("conv_42")).Result()
	if err != nil || n != 1 {
		t.Fatalf("order set has %d entries (%v), want 1", n, err)
	}
	ttl, err := f.db.Client.TTL(ctx, keys.EventLedger(ev.ID)).Result()
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
	f := newFixture(t, events.PublisherConfig{})
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
	f := newFixture(t, events.PublisherConfig{})
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
	f := newFixture(t, events.PublisherConfig{})
	_, err := f.pub.Publish(context.Background(), events.Event{Type: events.TypeCommentAdded, TicketID: 1001, Source: events.SourceWebhook})
	if err == nil {
		t.Fatal("want an error for an event without a comment")
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2026-11-24T10:05:00Z", t0},
		{"2026-11-24T11:05:00+01:00", t0},
		{"2026-11-24 10:05:00 +0000", t0},
		{"1795514700", t0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := events.ParseTime(tt.in)
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("got %s %v, want %s", got, err, tt.want)
			}
		})
	}
}
