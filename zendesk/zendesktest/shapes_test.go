package zendesktest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// TestAnswersLikeZendesk pins the shapes in which Zendesk answers (issue 14):
// the fake must not be easier to parse than Zendesk.
func TestAnswersLikeZendesk(t *testing.T) {
	t.Run("ForbiddenIsAnErrorObject", func(t *testing.T) {
		srv := zendesktest.NewServer(t)
		srv.FailNext(1, http.StatusForbidden)
		r := call(t, srv, "GET", "/api/v2/users/me", nil)
		wantStatus(t, r, http.StatusForbidden)
		var b struct {
			Error struct{ Title, Message string } `json:"error"`
		}
		r.decode(t, &b)
		if b.Error.Title != "Forbidden" || b.Error.Message == "" {
			t.Fatalf("body = %s, want {\"error\":{\"title\",\"message\"}}", r.body)
		}
	})
	t.Run("UpdateTicket429IsHTML", func(t *testing.T) {
		srv := zendesktest.NewServer(t, zendesktest.Config{UpdateTicketLimit: 1})
		id := createTicket(t, srv, "c", "1")
		wantStatus(t, addComment(t, srv, id, "2"), http.StatusOK)
		r := addComment(t, srv, id, "3")
		wantStatus(t, r, http.StatusTooManyRequests)
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") ||
			!strings.HasPrefix(string(r.body), "Rate limit for ticket updates exceeded") || r.header.Get("Retry-After") == "" {
			t.Fatalf("429 = %s %q (Retry-After %q), want text/html \"Rate limit for ticket updates exceeded…\"", ct, r.body, r.header.Get("Retry-After"))
		}
	})
	t.Run("PerTicket429IsHTML", func(t *testing.T) {
		srv := zendesktest.NewServer(t, zendesktest.Config{PerTicketUpdateLimit: 1})
		id := createTicket(t, srv, "c", "1")
		wantStatus(t, addComment(t, srv, id, "2"), http.StatusOK)
		r := addComment(t, srv, id, "3")
		wantStatus(t, r, http.StatusTooManyRequests)
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("Content-Type = %q, want text/html", ct)
		}
	})
	t.Run("CommentCapBodyNamesTheLimit", func(t *testing.T) {
		srv := zendesktest.NewServer(t, zendesktest.Config{MaxComments: 1})
		id := createTicket(t, srv, "c", "1")
		r := addComment(t, srv, id, "2")
		wantStatus(t, r, http.StatusUnprocessableEntity)
		var b struct {
			Error   string                                    `json:"error"`
			Details map[string][]struct{ Description string } `json:"details"`
		}
		r.decode(t, &b)
		if b.Error != "RecordInvalid" || len(b.Details["base"]) != 1 || !strings.Contains(b.Details["base"][0].Description, "limit of 1 comments") {
			t.Fatalf("body = %s", r.body)
		}
		// Other updates still work.
		wantStatus(t, call(t, srv, "PUT", fmt.Sprintf("/api/v2/tickets/%d", id), `{"ticket":{"status":"pending"}}`), http.StatusOK)
	})
	t.Run("TargetsAreHTTPTargets", func(t *testing.T) {
		srv := zendesktest.NewServer(t)
		id := srv.AddTarget("http://127.0.0.1:1/x", "", "")
		r := call(t, srv, "GET", fmt.Sprintf("/api/v2/targets/%d", id), nil)
		var b struct{ Target struct{ Type string } }
		r.decode(t, &b)
		if b.Target.Type != "http_target" {
			t.Fatalf("type = %q, want http_target", b.Target.Type)
		}
	})
	t.Run("WebhooksAPIHasItsOwnBudget", func(t *testing.T) {
		srv := zendesktest.NewServer(t, zendesktest.Config{RateLimit: 2})
		hook := srv.AddWebhook("http://127.0.0.1:1/hook", "s")
		for range 3 {
			r := call(t, srv, "GET", "/api/v2/webhooks/"+hook, nil)
			wantStatus(t, r, http.StatusOK)
			if r.header.Get("X-Rate-Limit") != "100" {
				t.Fatalf("X-Rate-Limit = %q, want the Webhooks API's 100", r.header.Get("X-Rate-Limit"))
			}
		}
		r := call(t, srv, "GET", "/api/v2/users/me", nil)
		wantStatus(t, r, http.StatusOK)
		if r.header.Get("X-Rate-Limit") != "2" || r.header.Get("X-Rate-Limit-Remaining") != "1" {
			t.Fatalf("account X-Rate-Limit %q remaining %q, want 2 and 1: webhooks calls must not spend it",
				r.header.Get("X-Rate-Limit"), r.header.Get("X-Rate-Limit-Remaining"))
		}
	})
}

func TestAuditShapes(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{ExportLag: -1})
	r := call(t, srv, "POST", "/api/v2/tickets", `{"ticket":{"subject":"Help","comment":{"body":"hi","public":true},
		"requester":{"name":"Ann","email":"ann@example.com"},"tags":["a"],"custom_fields":[{"id":360001,"value":7},{"id":360002,"value":"12"}]}}`)
	wantStatus(t, r, http.StatusCreated)
	var c struct {
		Ticket struct{ ID int64 }
		Audit  struct {
			Events []map[string]any `json:"events"`
		}
	}
	r.decode(t, &c)
	values := map[string]any{}
	for _, e := range c.Audit.Events {
		if e["type"] == "Create" {
			values[fmt.Sprint(e["field_name"])] = e["value"]
		}
	}
	tests := []struct {
		field string
		want  string // the value's JSON
	}{
		{"subject", `"Help"`},
		{"requester_id", fmt.Sprintf("%q", fmt.Sprint(srvRequester(t, srv, c.Ticket.ID)))},
		{"priority", `null`},
		{"tags", `["a"]`},
		{"360001", `7`},
		{"360002", `"12"`},
		{"status", `"new"`},
	}
	for _, tt := range tests {
		v, ok := values[tt.field]
		got, _ := json.Marshal(v)
		if !ok || string(got) != tt.want {
			t.Errorf("Create %s value = %s (present %v), want %s", tt.field, got, ok, tt.want)
		}
	}

	srv.AgentReply(c.Ticket.ID, "On it", true, "")
	var audits struct {
		Audits []struct {
			Events []map[string]any `json:"events"`
		} `json:"audits"`
	}
	call(t, srv, "GET", fmt.Sprintf("/api/v2/tickets/%d/audits", c.Ticket.ID), nil).decode(t, &audits)
	last := audits.Audits[len(audits.Audits)-1].Events
	var note map[string]any
	for _, e := range last {
		if e["type"] == "Notification" {
			note = e
		}
	}
	via, _ := note["via"].(map[string]any)
	if note == nil || via["channel"] != "rule" || note["recipients"] == nil {
		t.Fatalf("agent reply audit events = %v, want a Notification by rule to the requester", last)
	}

	var page struct {
		Events []struct {
			Via   any              `json:"via"`
			Child []map[string]any `json:"child_events"`
		} `json:"ticket_events"`
	}
	call(t, srv, "GET", "/api/v2/incremental/ticket_events?include=comment_events&start_time="+
		fmt.Sprint(time.Now().Add(-time.Hour).Unix()), nil).decode(t, &page)
	sawNotification := false
	for _, ev := range page.Events {
		if _, ok := ev.Via.(string); !ok {
			t.Errorf("event via = %v, want a string (\"Web form\")", ev.Via)
		}
		for _, ch := range ev.Child {
			if _, ok := ch["via"].(map[string]any); !ok {
				t.Errorf("child %v: via = %v, want an object {channel, source}", ch["event_type"], ch["via"])
			}
			sawNotification = sawNotification || ch["event_type"] == "Notification"
		}
	}
	if !sawNotification {
		t.Error("the export holds no Notification child event")
	}
}

func srvRequester(t *testing.T, srv *zendesktest.Server, id int64) int64 {
	t.Helper()
	var b struct {
		Ticket struct {
			RequesterID int64 `json:"requester_id"`
		}
	}
	call(t, srv, "GET", fmt.Sprintf("/api/v2/tickets/%d", id), nil).decode(t, &b)
	return b.Ticket.RequesterID
}

func TestScriptInvocations(t *testing.T) {
	srv := zendesktest.NewServer(t)
	snk, url := newSink(t)
	hook := srv.AddWebhook(url, "s", zendesktest.EventCommentAdded)
	id := createTicket(t, srv, "c", "1")
	srv.ScriptInvocations(1, zendesktest.InvocationTerminated, http.StatusForbidden)
	srv.ScriptInvocations(1, zendesktest.InvocationThrottled, 0)
	srv.AgentComment(id, "one", true)
	srv.AgentComment(id, "two", true)
	srv.AgentComment(id, "three", true)
	if n := len(snk.got()); n != 1 {
		t.Fatalf("endpoint got %d deliveries, want only the third", n)
	}
	r := call(t, srv, "GET", "/api/v2/webhooks/"+hook+"/invocations?sort=latest_completed_at", nil)
	var b struct {
		Invocations []map[string]any `json:"invocations"`
	}
	r.decode(t, &b)
	byStatus := map[string]any{}
	for _, inv := range b.Invocations {
		byStatus[fmt.Sprint(inv["status"])] = inv["status_code"]
	}
	if byStatus["terminated"] != float64(403) {
		t.Errorf("terminated status_code = %v, want 403; invocations %v", byStatus["terminated"], b.Invocations)
	}
	if code, ok := byStatus["throttled"]; !ok || code != nil {
		t.Errorf("throttled status_code = %v (present %v), want null", code, ok)
	}
	for _, inv := range srv.Invocations(hook) {
		if inv.Status == zendesktest.InvocationThrottled {
			if at := srv.Attempts(hook, inv.ID); len(at) != 1 || !strings.Contains(at[0].Request.Payload, "one") && !strings.Contains(at[0].Request.Payload, "two") {
				t.Errorf("throttled invocation attempts = %+v, want its payload kept", at)
			}
		}
	}
}
