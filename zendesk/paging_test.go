package zendesk

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestListCommentsFollowsOffsetPages(t *testing.T) {
	srv, rec := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		switch r.URL.Query().Get("page") {
		case "":
			// Zendesk's next_page names its own host; the client must stay on its base URL.
			writeJSON(w, 200, map[string]any{"comments": []any{map[string]any{"id": 1, "body": "a", "public": true}},
				"next_page": "https://acme.zendesk.com/api/v2/tickets/7/comments.json?page=2", "count": 3})
		case "2":
			writeJSON(w, 200, map[string]any{"comments": []any{map[string]any{"id": 2, "metadata": map[string]any{"custom": map[string]any{"deskrelay_message_id": "msg_2"}}}},
				"next_page": "https://acme.zendesk.com/api/v2/tickets/7/comments.json?page=3", "count": 3})
		default:
			writeJSON(w, 200, map[string]any{"comments": []any{map[string]any{"id": 3}}, "next_page": nil, "count": 3})
		}
	})
	c := mustClient(t, srv.URL, nil)
	got, err := c.ListComments(t.Context(), 7)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, cm := range got {
		ids = append(ids, cm.ID)
	}
	if !reflect.DeepEqual(ids, []int64{1, 2, 3}) || got[1].Metadata.CustomString("deskrelay_message_id") != "msg_2" {
		t.Fatalf("comments = %+v, want ids 1 2 3 with msg_2's metadata", got)
	}
	reqs := rec.all()
	if len(reqs) != 3 || reqs[0].Query != "page%5Bsize%5D=100" || reqs[1].Path != "/api/v2/tickets/7/comments.json" || reqs[1].Query != "page=2" {
		t.Errorf("requests = %+v", reqs)
	}
	if reqs[2].Header.Get("Authorization") == "" {
		t.Errorf("follow-up page sent without credentials")
	}
}

func TestListAuditsFollowsCursorPages(t *testing.T) {
	srv, rec := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		switch r.URL.Query().Get("page[after]") {
		case "":
			writeJSON(w, 200, map[string]any{
				"audits": []any{map[string]any{"id": 10, "metadata": map[string]any{"custom": map[string]any{"custom": map[string]any{"deskrelay_message_id": "m1"}}},
					"events": []any{map[string]any{"id": 11, "type": "Change", "field_name": "status", "value": "pending", "previous_value": "open"}}}},
				"meta":  map[string]any{"has_more": true, "after_cursor": "c1"},
				"links": map[string]any{"next": "https://acme.zendesk.com/api/v2/tickets/7/audits?page%5Bafter%5D=c1&page%5Bsize%5D=100"}})
		default:
			writeJSON(w, 200, map[string]any{
				"audits": []any{map[string]any{"id": 20}},
				"meta":   map[string]any{"has_more": false, "after_cursor": "c2"},
				// links.next may still be present: has_more decides.
				"links": map[string]any{"next": "https://acme.zendesk.com/api/v2/tickets/7/audits?page%5Bafter%5D=c2"}})
		}
	})
	c := mustClient(t, srv.URL, nil)
	got, err := c.ListAudits(t.Context(), 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != 10 || got[1].ID != 20 || got[0].Metadata.CustomString("deskrelay_message_id") != "m1" ||
		got[0].Events[0].FieldName != "status" || got[0].Events[0].Value != "pending" {
		t.Fatalf("audits = %+v", got)
	}
	if n := len(rec.all()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestListStopsOnPagingLoop(t *testing.T) {
	srv, _ := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		writeJSON(w, 200, map[string]any{"tickets": []any{map[string]any{"id": 1}}, "next_page": "https://acme.zendesk.com/api/v2/tickets?page=2"})
	})
	c := mustClient(t, srv.URL, nil)
	if _, err := c.TicketsByExternalID(t.Context(), "conv_1"); KindOf(err) != KindTemporary {
		t.Fatalf("err = %v, want temporary paging-loop error", err)
	}
}

func TestTicketsByExternalIDQueries(t *testing.T) {
	srv, rec := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		writeJSON(w, 200, map[string]any{"tickets": []any{map[string]any{"id": 5, "external_id": "conv 42&x", "status": "closed"}}, "next_page": nil})
	})
	c := mustClient(t, srv.URL, nil)
	got, err := c.TicketsByExternalID(t.Context(), "conv 42&x")
	if err != nil || len(got) != 1 || got[0].ID != 5 || got[0].Status != "closed" {
		t.Fatalf("got %+v, %v", got, err)
	}
	if q := rec.all()[0].Query; q != "external_id=conv+42%26x" {
		t.Errorf("query = %q", q)
	}
}

func TestListInvocations(t *testing.T) {
	from := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	srv, rec := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		if r.URL.Query().Get("page[after]") == "" {
			writeJSON(w, 200, map[string]any{
				"invocations": []any{map[string]any{"id": "inv1", "status": "circuit broken", "status_code": 0, "latest_completed_at": "2026-11-24T10:01:00Z"}},
				"meta":        map[string]any{"has_more": true, "after_cursor": "cur1"},
				"links":       map[string]any{"next": "https://acme.zendesk.com/api/v2/webhooks/wh1/invocations?page[after]=cur1"}})
			return
		}
		writeJSON(w, 200, map[string]any{
			"invocations": []any{map[string]any{"id": "inv2", "status": "failed", "status_code": 500}},
			"meta":        map[string]any{"has_more": false}})
	})
	c := mustClient(t, srv.URL, nil)
	p1, err := c.ListInvocations(t.Context(), "wh1", InvocationFilter{From: from, To: from.Add(time.Hour), Status: "failed", PageSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	if !p1.HasMore || p1.AfterCursor != "cur1" || len(p1.Invocations) != 1 || p1.Invocations[0].Status != "circuit broken" ||
		!p1.Invocations[0].LatestCompletedAt.Equal(from.Add(time.Minute)) {
		t.Fatalf("page 1 = %+v", p1)
	}
	p2, err := c.ListInvocations(t.Context(), "wh1", InvocationFilter{After: p1.AfterCursor})
	if err != nil || p2.HasMore || p2.AfterCursor != "" || len(p2.Invocations) != 1 || p2.Invocations[0].StatusCode != 500 {
		t.Fatalf("page 2 = %+v, %v", p2, err)
	}
	reqs := rec.all()
	q1 := reqs[0].Query
	want := "filter%5Bfrom_ts%5D=2026-11-24T10%3A00%3A00Z&filter%5Bstatus%5D=failed&filter%5Bto_ts%5D=2026-11-24T11%3A00%3A00Z&page%5Bsize%5D=50"
	if reqs[0].Path != "/api/v2/webhooks/wh1/invocations" || q1 != want {
		t.Errorf("request 1 = %s?%s, want query %s", reqs[0].Path, q1, want)
	}
	if reqs[1].Query != "page%5Bafter%5D=cur1" {
		t.Errorf("request 2 query = %q", reqs[1].Query)
	}
}

func TestInvocationAttemptsReadsPayload(t *testing.T) {
	srv, rec := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		writeJSON(w, 200, map[string]any{"attempts": []any{
			map[string]any{"id": "a1", "invocation_id": "inv1", "status": "failed", "status_code": 503,
				"request": map[string]any{"headers": []any{map[string]any{"key": "X-Zendesk-Webhook-Id", "value": "wh1"}}, "payload": `{"ticket_id":"1"}`}},
			// lenient: headers as an object, payload as JSON
			map[string]any{"id": "a2", "request": map[string]any{"headers": map[string]any{"X-A": "b"}, "payload": map[string]any{"ticket_id": "2"}}},
		}})
	})
	c := mustClient(t, srv.URL, nil)
	got, err := c.InvocationAttempts(t.Context(), "wh1", "inv1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Request.Payload != `{"ticket_id":"1"}` || got[0].Request.Headers[0].Value != "wh1" ||
		got[1].Request.Payload != `{"ticket_id":"2"}` || got[1].Request.Headers[0] != (Header{Key: "X-A", Value: "b"}) {
		t.Fatalf("attempts = %+v", got)
	}
	if p := rec.all()[0].Path; p != "/api/v2/webhooks/wh1/invocations/inv1/attempts" {
		t.Errorf("path = %q", p)
	}
}
