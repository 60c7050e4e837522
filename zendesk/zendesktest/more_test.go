package zendesktest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

func TestLostResponseDelayedPastClientTimeout(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{LostResponseDelay: 2 * time.Second})
	id := createTicket(t, srv, "c", "x")
	srv.LoseNext(1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "PUT", fmt.Sprintf("%s/api/v2/tickets/%d", srv.URL(), id),
		strings.NewReader(`{"ticket":{"comment":{"body":"slow","public":true}}}`))
	req.SetBasicAuth(srv.Email()+"/token", srv.APIToken())
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err == nil {
		res.Body.Close()
		t.Fatalf("got %d, want a timeout", res.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("err %v after %s", err, time.Since(start))
	}
	if cs := srv.Comments(id); len(cs) != 2 {
		t.Errorf("%d comments, want the write applied", len(cs))
	}
}

func TestSafeUpdateConflict(t *testing.T) {
	clk := newClock()
	srv := zendesktest.NewServer(t, zendesktest.Config{Now: clk.Now})
	id := createTicket(t, srv, "c", "x")
	stamp := clk.Now().Format(time.RFC3339)
	clk.Advance(time.Minute)
	srv.AgentComment(id, "meanwhile", true)
	r := call(t, srv, "PUT", fmt.Sprintf("/api/v2/tickets/%d", id), map[string]any{"ticket": map[string]any{
		"comment": map[string]any{"body": "y", "public": true}, "safe_update": true, "updated_stamp": stamp}})
	wantStatus(t, r, http.StatusConflict)
}

func TestCreateOrUpdateUser(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{UserCreateLimit: 2, Window: time.Hour})
	body := map[string]any{"user": map[string]any{"name": "Ann", "email": "Ann@Example.com"}}
	first := call(t, srv, "POST", "/api/v2/users/create_or_update", body)
	wantStatus(t, first, http.StatusCreated)
	wantStatus(t, call(t, srv, "POST", "/api/v2/users/create_or_update.json", body), http.StatusOK)
	wantStatus(t, call(t, srv, "POST", "/api/v2/users/create_or_update", body), http.StatusTooManyRequests)
	var u struct {
		User struct {
			ID   int64  `json:"id"`
			Role string `json:"role"`
		} `json:"user"`
	}
	first.decode(t, &u)
	r := call(t, srv, "GET", fmt.Sprintf("/api/v2/users/%d", u.User.ID), nil)
	wantStatus(t, r, http.StatusOK)
	if u.User.Role != "end-user" || !strings.Contains(string(r.body), `"email":"ann@example.com"`) {
		t.Errorf("user %s", r.body)
	}
}

func TestAuditsShowAgentChanges(t *testing.T) {
	srv := zendesktest.NewServer(t)
	id := createTicket(t, srv, "c", "x")
	cid := srv.AgentReply(id, "done", false, "solved")
	var out struct {
		Audits []struct {
			AuthorID int64            `json:"author_id"`
			Events   []map[string]any `json:"events"`
		} `json:"audits"`
	}
	call(t, srv, "GET", fmt.Sprintf("/api/v2/tickets/%d/audits.json", id), nil).decode(t, &out)
	if len(out.Audits) != 2 {
		t.Fatalf("%d audits", len(out.Audits))
	}
	a := out.Audits[1]
	if a.AuthorID != srv.AgentID() || len(a.Events) != 2 ||
		a.Events[0]["type"] != "Comment" || int64(a.Events[0]["id"].(float64)) != cid || a.Events[0]["public"] != false ||
		a.Events[1]["type"] != "Change" || a.Events[1]["value"] != "solved" || a.Events[1]["previous_value"] != "new" {
		t.Errorf("audit %+v", a)
	}
	t.Run("EndUserReplyReopens", func(t *testing.T) {
		srv.EndUserComment(id, "not fixed")
		if tk, _ := srv.Ticket(id); tk.Status != "open" {
			t.Errorf("status %q", tk.Status)
		}
	})
}
