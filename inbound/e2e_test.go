package inbound_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// managedTicket creates a ticket as relay would and records it as managed,
// with its first comment as deskrelay's own.
func managedTicket(t *testing.T, zd *zendesktest.Server, h *harness, conv string) int64 {
	t.Helper()
	id := zd.CreateTicket(zendesk.NewTicket{
		Subject: "The app crashes", Comment: zendesk.CommentInput{Body: "The app crashes when …", Public: true},
		Requester: &zendesk.Requester{Name: "Ann Lee", Email: "ann@example.com"}, ExternalID: conv, Tags: []string{"deskrelay"},
	})
	if id == 0 {
		t.Fatal("fake refused the ticket")
	}
	h.link(conv, id)
	for _, c := range zd.Comments(id) {
		if err := h.tickets.RememberOwnComment(context.Background(), c.ID); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func TestEndToEndWithFakeZendesk(t *testing.T) {
	tests := []struct {
		name  string
		setup func(zd *zendesktest.Server, h *harness)
	}{
		{"EventSubscriptionWebhook", func(zd *zendesktest.Server, h *harness) {
			zd.AddWebhook(h.api.URL+"/v1/zendesk/webhook", webhookSecret, zendesktest.EventCommentAdded, zendesktest.EventStatusChanged)
		}},
		{"TriggerWebhook", func(zd *zendesktest.Server, h *harness) {
			zd.AddWebhook(h.api.URL+"/v1/zendesk/webhook", webhookSecret)
		}},
		{"LegacyTarget", func(zd *zendesktest.Server, h *harness) {
			zd.AddTarget(h.api.URL+"/v1/zendesk/target", targetUser, targetPassword)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// a clock that moves only between agent actions: Zendesk's ids
			// of status changes have a resolution of one second
			var mu sync.Mutex
			now := time.Now().Add(-time.Minute)
			tick := func() { mu.Lock(); now = now.Add(2 * time.Second); mu.Unlock() }
			zd := zendesktest.NewServer(t, zendesktest.Config{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
			zc, err := zendesk.New(zendesk.Config{BaseURL: zd.URL(), Email: zd.Email(), APIToken: zd.APIToken()})
			if err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, harnessOptions{zendesk: zc})
			tt.setup(zd, h)
			ticket := managedTicket(t, zd, h, "conv_42")
			other := zd.CreateTicket(zendesk.NewTicket{Subject: "not ours", Comment: zendesk.CommentInput{Body: "x", Public: true},
				Requester: &zendesk.Requester{Name: "Bob", Email: "bob@example.com"}})

			tick()
			reply := zd.AgentComment(ticket, "Hi Ann, which version?", true)
			tick()
			zd.AgentComment(ticket, "internal: check logs", false)
			zd.AgentComment(other, "not a deskrelay ticket", true)
			tick()
			zd.SetStatus(ticket, "pending")
			tick()
			zd.EndUserComment(ticket, "5.2") // reopens: status open
			tick()
			second := zd.AgentReply(ticket, "Fixed in 5.3", true, "solved")

			var want []string
			for _, c := range zd.Comments(ticket) {
				if c.ID == reply || c.ID == second {
					want = append(want, events.CommentEventID(c.ID))
				}
			}
			if len(want) != 2 {
				t.Fatalf("fake comments: %v", zd.Comments(ticket))
			}
			deadline := time.Now().Add(15 * time.Second)
			for len(h.sink.events()) < 5 {
				if time.Now().After(deadline) {
					t.Fatalf("sink has %v after 15s; queue: %s", h.sink.ids(), h.queueState())
				}
				time.Sleep(10 * time.Millisecond)
			}
			h.idle(10 * time.Second)
			var comments, statuses []string
			for _, ev := range h.sink.events() {
				if ev.TicketID != ticket || ev.ConversationID != "conv_42" {
					t.Fatalf("event of another ticket: %+v", ev)
				}
				switch ev.Type {
				case events.TypeCommentAdded:
					comments = append(comments, ev.ID)
					if ev.Comment.Author.Role != events.RoleAgent || !ev.Comment.Public || ev.Comment.Author.ID != zd.AgentID() {
						t.Fatalf("comment %+v", ev.Comment)
					}
				case events.TypeStatusChanged:
					statuses = append(statuses, ev.Status)
				}
			}
			if strings.Join(comments, " ") != strings.Join(want, " ") {
				t.Fatalf("comments at the sink %v, want %v", comments, want)
			}
			// the ticket stays "new" until an agent sets a status (the fake
			// does not open it on the first reply); the requester's reply reopens it
			wantStatuses := []string{"pending", "open", "solved"}
			if strings.Join(statuses, " ") != strings.Join(wantStatuses, " ") {
				t.Fatalf("statuses at the sink %v, want %v", statuses, wantStatuses)
			}
			if f, _ := sink.Failed(context.Background(), h.rdb, keys.Default, time.Time{}); len(f) != 0 {
				t.Fatalf("failed events: %+v", f)
			}
		})
	}
}

func TestEndToEndNoEchoOfOwnWrites(t *testing.T) {
	zd := zendesktest.NewServer(t, zendesktest.Config{NotifyAPIWrites: true})
	zc, err := zendesk.New(zendesk.Config{BaseURL: zd.URL(), Email: zd.Email(), APIToken: zd.APIToken()})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{zendesk: zc, cfg: func(c *inbound.Config) { c.ForwardPrivate = true }})
	zd.AddWebhook(h.api.URL+"/v1/zendesk/webhook", webhookSecret, zendesktest.EventCommentAdded)
	zd.AddWebhook(h.api.URL+"/v1/zendesk/webhook", webhookSecret) // and a trigger webhook
	ticket := managedTicket(t, zd, h, "conv_7")
	tk, _ := zd.Ticket(ticket)
	ctx := context.Background()
	// relay forwards the platform's messages as the requester's comments,
	// public and (unusually) private, and remembers them
	for _, public := range []bool{true, false} {
		w, err := zc.AddComment(ctx, ticket, zendesk.CommentInput{Body: "from the platform", Public: public, AuthorID: tk.RequesterID},
			map[string]any{"deskrelay_message_id": "msg_1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.tickets.RememberOwnComment(ctx, w.CommentID()); err != nil {
			t.Fatal(err)
		}
	}
	zd.WaitDeliveries()
	reply := zd.AgentComment(ticket, "agent answer", true)
	testutil.WaitFor(t, 10*time.Second, func() bool { return len(h.sink.events()) >= 1 }, "the agent's reply")
	h.idle(10 * time.Second)
	if ids := h.sink.ids(); len(ids) != 1 || ids[0] != events.CommentEventID(reply) {
		t.Fatalf("sink got %v, want only the agent's reply %d", ids, reply)
	}
}
