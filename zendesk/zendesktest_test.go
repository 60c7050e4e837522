package zendesk_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// TestAgainstFakeZendesk runs every client method against the shared fake
// Zendesk, so the two stay in agreement.
func TestAgainstFakeZendesk(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{ExportLag: -1, ExportPageSize: 2, ExportLimit: 1000, RateLimit: 10000, WebhookTimeout: time.Second})
	c, err := zendesk.New(zendesk.Config{BaseURL: srv.URL(), Email: srv.Email(), APIToken: srv.APIToken(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	start := time.Now().Add(-time.Minute)

	me, err := c.Me(ctx)
	if err != nil || me.ID == nil || *me.ID != srv.APIUserID() {
		t.Fatalf("Me = %+v, %v", me, err)
	}
	u, err := c.CreateOrUpdateUser(ctx, zendesk.UserInput{Name: "Ann Lee", Email: "ann@example.com"})
	if err != nil || u.ID == nil {
		t.Fatalf("CreateOrUpdateUser = %+v, %v", u, err)
	}
	if got, err := c.GetUser(ctx, *u.ID); err != nil || got.Email != "ann@example.com" {
		t.Fatalf("GetUser = %+v, %v", got, err)
	}

	nt := zendesk.NewTicket{Subject: "Crash", Comment: zendesk.CommentInput{Body: "It crashes", Public: true},
		Requester: &zendesk.Requester{Name: "Ann Lee", Email: "ann@example.com"}, ExternalID: "conv_42",
		Tags: []string{"deskrelay"}, Metadata: map[string]any{"deskrelay_message_id": "m1"}}
	w, err := c.CreateTicket(ctx, nt, "m1")
	if err != nil || w.Ticket.ID == 0 || w.IdempotencyHit {
		t.Fatalf("CreateTicket = %+v, %v", w, err)
	}
	id := w.Ticket.ID
	again, err := c.CreateTicket(ctx, nt, "m1")
	if err != nil || !again.IdempotencyHit || again.Ticket.ID != id {
		t.Fatalf("CreateTicket again = %+v, %v; want an idempotency hit", again, err)
	}
	nt.Comment.Body = "different"
	if _, err := c.CreateTicket(ctx, nt, "m1"); zendesk.KindOf(err) != zendesk.KindInvalid {
		t.Fatalf("CreateTicket with a reused key = %v, want invalid", err)
	}

	for i, body := range []string{"second", "third"} {
		cw, err := c.AddComment(ctx, id, zendesk.CommentInput{Body: body, Public: true, AuthorID: *u.ID},
			map[string]any{"deskrelay_message_id": "m" + string(rune('2'+i))})
		if err != nil || cw.CommentID() == 0 {
			t.Fatalf("AddComment = %+v, %v", cw, err)
		}
	}
	for i := range 120 { // more than one page of 100
		srv.AgentComment(id, fmt.Sprintf("agent %d", i), i%2 == 0)
	}
	comments, err := c.ListComments(ctx, id)
	if err != nil || len(comments) != 123 || comments[2].Body != "third" || comments[122].Body != "agent 119" {
		t.Fatalf("ListComments = %d comments, %v", len(comments), err)
	}
	if n := srv.CountRequests("GET", fmt.Sprintf("/api/v2/tickets/%d/comments", id)); n != 2 {
		t.Errorf("%d comment page requests, want 2", n)
	}
	audits, err := c.ListAudits(ctx, id)
	if err != nil || len(audits) != 123 || audits[2].Metadata.CustomString("deskrelay_message_id") != "m3" {
		t.Fatalf("ListAudits = %+v, %v", audits, err)
	}
	if ts, err := c.TicketsByExternalID(ctx, "conv_42"); err != nil || len(ts) != 1 || ts[0].ID != id {
		t.Fatalf("TicketsByExternalID = %+v, %v", ts, err)
	}
	if tk, err := c.GetTicket(ctx, id); err != nil || tk.ExternalID != "conv_42" {
		t.Fatalf("GetTicket = %+v, %v", tk, err)
	}

	hook := srv.AddWebhook("http://127.0.0.1:1/unreachable", "s3cret")
	srv.AgentReply(id, "We are on it", true, "pending")
	targetID := srv.AddTarget("http://127.0.0.1:1/t", "u", "p")
	srv.SetTargetActive(targetID, false)

	// The closed ticket: 422 Closed, then a follow-up.
	srv.CloseTicket(id)
	_, err = c.AddComment(ctx, id, zendesk.CommentInput{Body: "late", Public: true}, nil)
	if ze := zendesk.AsError(err); ze == nil || !ze.Closed() {
		t.Fatalf("AddComment on a closed ticket = %v, want Closed", err)
	}
	fw, err := c.CreateTicket(ctx, zendesk.NewTicket{Comment: zendesk.CommentInput{Body: "late", Public: true},
		RequesterID: *u.ID, ExternalID: "conv_42", ViaFollowupSourceID: id}, "m5")
	if err != nil || fw.Ticket.ID == id {
		t.Fatalf("follow-up = %+v, %v", fw, err)
	}
	if _, err := c.UpdateTicket(ctx, fw.Ticket.ID, zendesk.TicketUpdate{Status: "solved"}); err != nil {
		t.Fatalf("UpdateTicket: %v", err)
	}
	srv.DeleteTicket(fw.Ticket.ID)
	if _, err := c.GetTicket(ctx, fw.Ticket.ID); zendesk.KindOf(err) != zendesk.KindNotFound {
		t.Fatalf("GetTicket of a deleted ticket = %v, want not found", err)
	}

	// Exports.
	seen := map[int64]int{}
	var comment, status bool
	err = c.EachTicketEventsPage(ctx, start, func(p *zendesk.TicketEventsPage) error {
		for _, ev := range p.Events {
			seen[ev.ID]++
			for _, ch := range ev.ChildEvents {
				comment = comment || (ch.EventType == "Comment" && ch.Body == "We are on it")
				status = status || ch.Status == "pending"
			}
		}
		return nil
	})
	if err != nil || len(seen) < 127 || !comment || !status {
		t.Fatalf("EachTicketEventsPage: %d events, comment=%v status=%v, %v", len(seen), comment, status, err)
	}
	for evID, n := range seen {
		if n != 1 {
			t.Errorf("event %d seen %d times", evID, n)
		}
	}
	if p, err := c.IncrementalTickets(ctx, start, ""); err != nil || len(p.Tickets) == 0 {
		t.Fatalf("IncrementalTickets = %+v, %v", p, err)
	} else if p.AfterCursor != "" && !p.EndOfStream {
		if _, err := c.IncrementalTickets(ctx, time.Time{}, p.AfterCursor); err != nil {
			t.Fatalf("IncrementalTickets(cursor): %v", err)
		}
	}

	// Webhook and target.
	srv.SetWebhookStatus(hook, "inactive")
	if wh, err := c.GetWebhook(ctx, hook); err != nil || wh.Status != "inactive" {
		t.Fatalf("GetWebhook = %+v, %v", wh, err)
	}
	if err := c.ActivateWebhook(ctx, hook); err != nil {
		t.Fatalf("ActivateWebhook: %v", err)
	}
	if wh, _ := srv.Webhook(hook); wh.Status != "active" {
		t.Errorf("webhook status after ActivateWebhook = %q", wh.Status)
	}
	if sec, err := c.WebhookSigningSecret(ctx, hook); err != nil || sec != "s3cret" {
		t.Fatalf("WebhookSigningSecret = %q, %v", sec, err)
	}
	inv, err := c.ListInvocations(ctx, hook, zendesk.InvocationFilter{From: start, To: time.Now().Add(time.Minute), PageSize: 10})
	if err != nil || len(inv.Invocations) == 0 {
		t.Fatalf("ListInvocations = %+v, %v", inv, err)
	}
	if _, err := c.InvocationAttempts(ctx, hook, inv.Invocations[0].ID); err != nil {
		t.Fatalf("InvocationAttempts: %v", err)
	}
	if tg, err := c.GetTarget(ctx, targetID); err != nil || tg.Active {
		t.Fatalf("GetTarget = %+v, %v; want inactive", tg, err)
	}
	if err := c.ActivateTarget(ctx, targetID); err != nil {
		t.Fatalf("ActivateTarget: %v", err)
	}
	if tg, _ := srv.Target(targetID); !tg.Active {
		t.Errorf("target inactive after ActivateTarget")
	}
	if _, err := c.TargetFailures(ctx); err != nil {
		t.Fatalf("TargetFailures: %v", err)
	}
}

// TestFakeFailuresAsTheClientSeesThem: the fake's Zendesk-shaped failures
// are classified by the client as the relay needs them.
func TestFakeFailuresAsTheClientSeesThem(t *testing.T) {
	ctx := t.Context()
	newClient := func(srv *zendesktest.Server, got *[]zendesk.Response) *zendesk.Client {
		c, err := zendesk.New(zendesk.Config{BaseURL: srv.URL(), Email: srv.Email(), APIToken: srv.APIToken(), Timeout: 5 * time.Second,
			OnResponse: func(r zendesk.Response) { *got = append(*got, r) }})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	newTicket := func(c *zendesk.Client) int64 {
		w, err := c.CreateTicket(ctx, zendesk.NewTicket{Subject: "s", Comment: zendesk.CommentInput{Body: "1", Public: true},
			Requester: &zendesk.Requester{Name: "Ann", Email: "ann@example.com"}}, "")
		if err != nil {
			t.Fatal(err)
		}
		return w.Ticket.ID
	}
	comment := func(c *zendesk.Client, id int64, body string) *zendesk.Error {
		_, err := c.AddComment(ctx, id, zendesk.CommentInput{Body: body, Public: true}, nil)
		return zendesk.AsError(err)
	}

	t.Run("CommentLimitClosedAndInvocations", func(t *testing.T) {
		srv := zendesktest.NewServer(t, zendesktest.Config{MaxComments: 2})
		var got []zendesk.Response
		c := newClient(srv, &got)
		id := newTicket(c)
		if ze := comment(c, id, "2"); ze != nil {
			t.Fatal(ze)
		}
		if ze := comment(c, id, "3"); !ze.CommentLimit() || ze.Closed() {
			t.Fatalf("third comment = %v, want the comment-limit 422", ze)
		}
		hook := srv.AddWebhook("http://127.0.0.1:1/unused", "s", zendesktest.EventCommentAdded)
		srv.ScriptInvocations(1, zendesktest.InvocationTerminated, 403)
		srv.SetStatus(id, "closed")
		other := newTicket(c)
		srv.AgentComment(other, "agent one", true)
		if ze := comment(c, id, "late"); !ze.Closed() || ze.CommentLimit() {
			t.Fatalf("comment on closed ticket = %v, want Closed", ze)
		}
		p, err := c.ListInvocations(ctx, hook, zendesk.InvocationFilter{})
		if err != nil || len(p.Invocations) != 1 || p.Invocations[0].Status != zendesk.InvocationTerminated || p.Invocations[0].StatusCode != 403 {
			t.Fatalf("invocations = %+v, %v; want one terminated with 403", p, err)
		}
		if r := got[len(got)-1]; r.Family != zendesk.FamilyWebhooks || r.SpendsAccount || r.Account.Known || r.RateLimit.Limit != 100 {
			t.Fatalf("webhooks OnResponse = %+v, want the webhooks family's own budget of 100", r)
		}
	})
	t.Run("UpdateTicketLimitIsTheFamilys", func(t *testing.T) {
		srv := zendesktest.NewServer(t, zendesktest.Config{UpdateTicketLimit: 1})
		var got []zendesk.Response
		c := newClient(srv, &got)
		id := newTicket(c)
		if ze := comment(c, id, "2"); ze != nil {
			t.Fatal(ze)
		}
		ze := comment(c, id, "3")
		if ze == nil || ze.Kind != zendesk.KindRateLimited || ze.Family != zendesk.FamilyTicketsUpdate || ze.RetryAfter <= 0 {
			t.Fatalf("second update = %+v, want rate limited on tickets-update", ze)
		}
		last := got[len(got)-1]
		if last.Family != zendesk.FamilyTicketsUpdate || !last.RateLimit.Known || last.RateLimit.Remaining != 0 || last.RateLimit.Limit != 1 ||
			!last.Account.Known || last.Account.Remaining == 0 || last.RetryAfter <= 0 {
			t.Fatalf("OnResponse = %+v, want tickets-update exhausted, the account not", last)
		}
	})
}
