package events_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/events"
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
		{"CommentOfDefault", events.AccountEventID("default", events.CommentEventID(7)), "zd:comment:7"},
		{"CommentOfNoAccount", events.AccountEventID("", events.CommentEventID(7)), "zd:comment:7"},
		{"CommentOfAcme", events.AccountEventID("acme", events.CommentEventID(7)), "zd:acme:comment:7"},
		{"StatusOfAcme", events.AccountEventID("acme", events.StatusEventID(1001, "open", t0)), "zd:acme:status:1001:open:1795514700"},
		{"NotZendesksUnchanged", events.AccountEventID("acme", "msg:1:delivered"), "msg:1:delivered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

// TestValidateAccountID: a comment event's id must be its account's.
func TestValidateAccountID(t *testing.T) {
	ev := events.NewCommentEvent(1001, "open", events.Comment{ID: 7, Author: events.Author{ID: 9, Role: events.RoleAgent}, CreatedAt: t0}, events.SourceWebhook)
	if err := ev.Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	ev.Account = "acme"
	if err := ev.Validate(); err == nil || !strings.Contains(err.Error(), "zd:acme:comment:7") {
		t.Fatalf("acme's event with default's id: %v, want an error naming zd:acme:comment:7", err)
	}
	ev.ID = events.AccountEventID("acme", ev.ID)
	if err := ev.Validate(); err != nil {
		t.Fatalf("acme: %v", err)
	}
}

func TestEventJSON(t *testing.T) {
	ev := events.NewCommentEvent(1001, "PENDING", events.Comment{
		ID: 123456, Body: "b", HTMLBody: "<p>b</p>", Public: true,
		Author: events.Author{ID: 9, Name: "Agent Smith", Role: events.RoleAgent}, CreatedAt: t0,
	}, events.SourceWebhook)
	ev.ConversationID = "conv_42"
	ev.Account = events.DefaultAccount // the account's Publisher sets it
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"ticket.comment_added","id":"zd:comment:123456","conversation_id":"conv_42","ticket_id":1001,"status":"pending",` +
		`"comment":{"id":123456,"body":"b","html_body":"\u003cp\u003eb\u003c/p\u003e","public":true,"author":{"id":9,"name":"Agent Smith","role":"agent"},"created_at":"2026-11-24T10:05:00Z"},` +
		`"occurred_at":"2026-11-24T10:05:00Z","source":"webhook","account":"default"}`
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
