package zendesktest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

func TestCreateTicket(t *testing.T) {
	srv := zendesktest.NewServer(t)
	r := call(t, srv, "POST", "/api/v2/tickets", map[string]any{"ticket": map[string]any{
		"subject": "The app crashes", "external_id": "conv_42", "tags": []string{"deskrelay", "ios"},
		"custom_fields": []map[string]any{{"id": 360001, "value": "gold"}},
		"comment":       map[string]any{"body": "It crashes on Save", "public": true},
		"requester":     map[string]any{"name": "Ann Lee", "email": "ann@example.com"},
		"metadata":      map[string]any{"deskrelay_message_id": "msg_1"},
	}})
	wantStatus(t, r, http.StatusCreated)
	var c created
	r.decode(t, &c)
	if want := fmt.Sprintf("%s/api/v2/tickets/%d.json", srv.URL(), c.Ticket.ID); r.header.Get("Location") != want {
		t.Errorf("Location = %q, want %q", r.header.Get("Location"), want)
	}
	if c.Ticket.Description != "It crashes on Save" || c.Ticket.Status != "new" {
		t.Errorf("ticket = %+v", c.Ticket)
	}
	if r.header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	u, ok := srv.User(c.Ticket.RequesterID)
	if !ok || u.Email != "ann@example.com" || u.Role != "end-user" {
		t.Errorf("requester = %+v, %v", u, ok)
	}
	comments := srv.Comments(c.Ticket.ID)
	if len(comments) != 1 || comments[0].AuthorID != c.Ticket.RequesterID || comments[0].Metadata.CustomString("deskrelay_message_id") != "msg_1" {
		t.Errorf("comments = %+v", comments)
	}
	audits := srv.Audits(c.Ticket.ID)
	if len(audits) != 1 || audits[0].Metadata.CustomString("deskrelay_message_id") != "msg_1" {
		t.Errorf("audits = %+v", audits)
	}

	// A second ticket for the same requester reuses the user; external_id is not unique.
	id2 := createTicket(t, srv, "conv_42", "again")
	tk, _ := srv.Ticket(id2)
	if tk.RequesterID != c.Ticket.RequesterID {
		t.Errorf("requester %d, want %d (found by email)", tk.RequesterID, c.Ticket.RequesterID)
	}
	var list struct {
		Tickets []struct{ ID int64 } `json:"tickets"`
		Count   int                  `json:"count"`
	}
	r = call(t, srv, "GET", "/api/v2/tickets.json?external_id=conv_42", nil)
	wantStatus(t, r, http.StatusOK)
	r.decode(t, &list)
	if list.Count != 2 || len(list.Tickets) != 2 {
		t.Errorf("by external id = %+v", list)
	}
	wantStatus(t, call(t, srv, "GET", fmt.Sprintf("/api/v2/tickets/%d", id2), nil), http.StatusOK)
	if r := call(t, srv, "GET", "/api/v2/tickets/999999.json", nil); r.status != 404 || string(r.body) != `{"description":"Not found","error":"RecordNotFound"}` {
		t.Errorf("unknown ticket: %d %s", r.status, r.body)
	}
}

func TestIdempotentCreate(t *testing.T) {
	clk := newClock()
	srv := zendesktest.NewServer(t, zendesktest.Config{Now: clk.Now})
	body := map[string]any{"ticket": map[string]any{"comment": map[string]any{"body": "hi", "public": true}, "external_id": "c1"}}
	first := call(t, srv, "POST", "/api/v2/tickets", body, "Idempotency-Key", "msg_1")
	wantStatus(t, first, http.StatusCreated)
	if got := first.header.Get("x-idempotency-lookup"); got != "miss" {
		t.Errorf("first lookup = %q, want miss", got)
	}
	t.Run("SameBodyIsHit", func(t *testing.T) {
		again := call(t, srv, "POST", "/api/v2/tickets", body, "Idempotency-Key", "msg_1")
		wantStatus(t, again, http.StatusCreated)
		if got := again.header.Get("x-idempotency-lookup"); got != "hit" {
			t.Errorf("lookup = %q, want hit", got)
		}
		if string(again.body) != string(first.body) {
			t.Errorf("body differs:\n%s\n%s", again.body, first.body)
		}
		if n := len(srv.Tickets()); n != 1 {
			t.Errorf("%d tickets, want 1", n)
		}
	})
	t.Run("DifferentBodyIs400", func(t *testing.T) {
		other := map[string]any{"ticket": map[string]any{"comment": map[string]any{"body": "other", "public": true}}}
		r := call(t, srv, "POST", "/api/v2/tickets", other, "Idempotency-Key", "msg_1")
		wantStatus(t, r, http.StatusBadRequest)
		if want := `{"description":"Request parameters don't match the given idempotency key","error":"IdempotentRequestError"}`; string(r.body) != want {
			t.Errorf("body = %s", r.body)
		}
	})
	t.Run("ExpiredKeyCreatesAgain", func(t *testing.T) {
		clk.Advance(2*time.Hour + time.Second)
		r := call(t, srv, "POST", "/api/v2/tickets", body, "Idempotency-Key", "msg_1")
		wantStatus(t, r, http.StatusCreated)
		if r.header.Get("x-idempotency-lookup") != "miss" || len(srv.Tickets()) != 2 {
			t.Errorf("lookup %q, %d tickets", r.header.Get("x-idempotency-lookup"), len(srv.Tickets()))
		}
	})
}

func TestUpdateTicket(t *testing.T) {
	srv := zendesktest.NewServer(t)
	id := createTicket(t, srv, "c1", "first")
	path := fmt.Sprintf("/api/v2/tickets/%d", id)

	t.Run("PublicCarriesOverAndAuthorHonoured", func(t *testing.T) {
		r := call(t, srv, "PUT", path, map[string]any{"ticket": map[string]any{"comment": map[string]any{"body": "note", "author_id": srv.AgentID()}, "metadata": map[string]any{"k": "v"}}})
		wantStatus(t, r, http.StatusOK)
		cs := srv.Comments(id)
		last := cs[len(cs)-1]
		if !last.Public || last.AuthorID != srv.AgentID() || last.Metadata.CustomString("k") != "v" {
			t.Errorf("comment = %+v", last)
		}
	})
	t.Run("SolvedReopensOnRequesterComment", func(t *testing.T) {
		srv.SetStatus(id, "solved")
		tk, _ := srv.Ticket(id)
		r := call(t, srv, "PUT", path, map[string]any{"ticket": map[string]any{"comment": map[string]any{"body": "still broken", "public": true, "author_id": tk.RequesterID}}})
		wantStatus(t, r, http.StatusOK)
		if tk, _ := srv.Ticket(id); tk.Status != "open" {
			t.Errorf("status = %q, want open", tk.Status)
		}
	})
	t.Run("FollowUpOfOpenTicketIs422", func(t *testing.T) {
		r := call(t, srv, "POST", "/api/v2/tickets", map[string]any{"ticket": map[string]any{"via_followup_source_id": id, "comment": map[string]any{"body": "x", "public": true}}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
	})
	t.Run("ClosedIs422", func(t *testing.T) {
		srv.CloseTicket(id)
		r := addComment(t, srv, id, "late")
		wantStatus(t, r, http.StatusUnprocessableEntity)
		want := `{"description":"Record validation errors","details":{"status":[{"description":"Status: closed prevents ticket update"}]},"error":"RecordInvalid"}`
		if string(r.body) != want {
			t.Errorf("body = %s", r.body)
		}
	})
	t.Run("FollowUpOfClosedTicketInheritsTags", func(t *testing.T) {
		r := call(t, srv, "POST", "/api/v2/tickets", map[string]any{"ticket": map[string]any{"via_followup_source_id": id, "comment": map[string]any{"body": "x", "public": true}}})
		wantStatus(t, r, http.StatusCreated)
		if !strings.Contains(string(r.body), `"rel":"follow_up"`) {
			t.Errorf("no follow_up via: %s", r.body)
		}
	})
	t.Run("DeletedIs404", func(t *testing.T) {
		id2 := createTicket(t, srv, "c2", "x")
		srv.DeleteTicket(id2)
		wantStatus(t, addComment(t, srv, id2, "x"), http.StatusNotFound)
	})
	t.Run("CommentCapIs422", func(t *testing.T) {
		small := zendesktest.NewServer(t, zendesktest.Config{MaxComments: 2})
		id := createTicket(t, small, "c", "1")
		wantStatus(t, addComment(t, small, id, "2"), http.StatusOK)
		wantStatus(t, addComment(t, small, id, "3"), http.StatusUnprocessableEntity)
	})
}

func TestCommentsPaging(t *testing.T) {
	srv := zendesktest.NewServer(t)
	id := createTicket(t, srv, "c", "0")
	for i := 1; i < 5; i++ {
		wantStatus(t, addComment(t, srv, id, fmt.Sprint(i)), http.StatusOK)
	}
	type page struct {
		Comments []struct{ Body string } `json:"comments"`
		NextPage *string                 `json:"next_page"`
		Count    int                     `json:"count"`
		Meta     struct {
			HasMore     bool   `json:"has_more"`
			AfterCursor string `json:"after_cursor"`
		} `json:"meta"`
	}
	var bodies []string
	next := fmt.Sprintf("/api/v2/tickets/%d/comments.json?per_page=2", id)
	for next != "" {
		var p page
		call(t, srv, "GET", next, nil).decode(t, &p)
		for _, c := range p.Comments {
			bodies = append(bodies, c.Body)
		}
		next = ""
		if p.NextPage != nil {
			next = strings.TrimPrefix(*p.NextPage, srv.URL())
		}
	}
	if got := strings.Join(bodies, ","); got != "0,1,2,3,4" {
		t.Errorf("offset paging = %s", got)
	}
	bodies = nil
	after := ""
	for {
		var p page
		call(t, srv, "GET", fmt.Sprintf("/api/v2/tickets/%d/comments?page[size]=3&page[after]=%s", id, after), nil).decode(t, &p)
		for _, c := range p.Comments {
			bodies = append(bodies, c.Body)
		}
		if !p.Meta.HasMore {
			break
		}
		after = p.Meta.AfterCursor
	}
	if got := strings.Join(bodies, ","); got != "0,1,2,3,4" {
		t.Errorf("cursor paging = %s", got)
	}
}
