package zendesk

import (
	"net/http"
	"testing"
	"time"
)

// TestReadMethods calls every read method against a server that knows only
// the documented paths and fails the test on any other.
func TestReadMethods(t *testing.T) {
	routes := map[string]string{
		"GET /api/v2/tickets/1001":                         `{"ticket":{"id":1001,"external_id":"conv_42","status":"open","requester_id":77,"tags":["deskrelay"],"updated_at":"2026-11-24T10:00:00Z"}}`,
		"GET /api/v2/webhooks/wh1":                         `{"webhook":{"id":"wh1","name":"deskrelay","status":"inactive","endpoint":"https://relay.example.com/v1/zendesk/webhook","subscriptions":["conditional_ticket_events"]}}`,
		"GET /api/v2/webhooks/wh1/signing_secret":          `{"signing_secret":{"algorithm":"SHA256","secret":"whsecret"}}`,
		"GET /api/v2/targets/360":                          `{"target":{"id":360,"title":"relay","type":"url_target_v2","active":false,"target_url":"https://relay.example.com/v1/zendesk/target"}}`,
		"GET /api/v2/target_failures":                      `{"target_failures":[{"id":1,"target_name":"relay","status_code":500,"consecutive_failure_count":21}]}`,
		"GET /api/v2/users/me":                             `{"user":{"id":null,"name":"Anonymous user","role":"end-user"}}`,
		"GET /api/v2/users/9":                              `{"user":{"id":9,"name":"Agent Smith","role":"agent"}}`,
		"GET /api/v2/incremental/tickets/cursor":           `{"tickets":[{"id":1}],"after_cursor":"abc","end_of_stream":false}`,
		"PUT /api/v2/tickets/1001":                         `{"ticket":{"id":1001,"status":"pending"},"audit":{"id":3,"events":[]}}`,
		"GET /api/v2/webhooks/wh%2F1/invocations":          `{"invocations":[]}`,
		"GET /api/v2/webhooks/wh1/invocations/i1/attempts": `{"attempts":[]}`,
	}
	srv, rec := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		body, ok := routes[r.Method+" "+r.URL.EscapedPath()]
		if !ok {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.EscapedPath())
			w.WriteHeader(404)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	})
	c := mustClient(t, srv.URL, nil)
	ctx := t.Context()

	tk, err := c.GetTicket(ctx, 1001)
	if err != nil || tk.ExternalID != "conv_42" || tk.RequesterID != 77 || tk.UpdatedAt.IsZero() {
		t.Errorf("GetTicket = %+v, %v", tk, err)
	}
	wh, err := c.GetWebhook(ctx, "wh1")
	if err != nil || wh.Status != "inactive" || wh.Endpoint == "" {
		t.Errorf("GetWebhook = %+v, %v", wh, err)
	}
	sec, err := c.WebhookSigningSecret(ctx, "wh1")
	if err != nil || sec != "whsecret" {
		t.Errorf("WebhookSigningSecret = %q, %v", sec, err)
	}
	tg, err := c.GetTarget(ctx, 360)
	if err != nil || tg.Active || tg.ID != 360 {
		t.Errorf("GetTarget = %+v, %v", tg, err)
	}
	tf, err := c.TargetFailures(ctx)
	if err != nil || len(tf) != 1 || tf[0].ConsecutiveFailureCount != 21 {
		t.Errorf("TargetFailures = %+v, %v", tf, err)
	}
	me, err := c.Me(ctx)
	if err != nil || me.ID != nil {
		t.Errorf("Me = %+v, %v; want the anonymous user (id null)", me, err)
	}
	u, err := c.GetUser(ctx, 9)
	if err != nil || u.Role != "agent" {
		t.Errorf("GetUser = %+v, %v", u, err)
	}
	p, err := c.IncrementalTickets(ctx, time.Unix(1000, 0), "")
	if err != nil || p.AfterCursor != "abc" || len(p.Tickets) != 1 {
		t.Errorf("IncrementalTickets = %+v, %v", p, err)
	}
	if _, err := c.IncrementalTickets(ctx, time.Time{}, "abc"); err != nil {
		t.Errorf("IncrementalTickets(cursor) = %v", err)
	}
	stamp := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	w, err := c.UpdateTicket(ctx, 1001, TicketUpdate{Status: "pending", SafeUpdate: true, UpdatedStamp: &stamp})
	if err != nil || w.Ticket.Status != "pending" || w.CommentID() != 0 {
		t.Errorf("UpdateTicket = %+v, %v", w, err)
	}
	if _, err := c.ListInvocations(ctx, "wh/1", InvocationFilter{}); err != nil {
		t.Errorf("ListInvocations with an id needing escaping = %v", err)
	}
	if a, err := c.InvocationAttempts(ctx, "wh1", "i1"); err != nil || len(a) != 0 {
		t.Errorf("InvocationAttempts = %+v, %v", a, err)
	}

	reqs := rec.all()
	if q := reqs[7].Query; q != "start_time=1000" {
		t.Errorf("incremental tickets query = %q", q)
	}
	if q := reqs[8].Query; q != "cursor=abc" {
		t.Errorf("incremental tickets cursor query = %q", q)
	}
	if b := string(reqs[9].Body); b != `{"ticket":{"status":"pending","safe_update":true,"updated_stamp":"2026-11-24T10:00:00Z"}}` {
		t.Errorf("update body = %s", b)
	}
}

func TestSigningSecretMissingIsInvalid(t *testing.T) {
	srv, _ := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		writeJSON(w, 200, map[string]any{"signing_secret": map[string]any{}})
	})
	c := mustClient(t, srv.URL, nil)
	if _, err := c.WebhookSigningSecret(t.Context(), "wh1"); KindOf(err) != KindInvalid {
		t.Fatalf("err = %v, want invalid", err)
	}
}

func TestBadSuccessBodyOfWriteIsAmbiguous(t *testing.T) {
	srv, _ := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		w.WriteHeader(201)
		_, _ = w.Write([]byte(`<html>proxy page</html>`))
	})
	c := mustClient(t, srv.URL, nil)
	_, err := c.CreateTicket(t.Context(), NewTicket{Comment: CommentInput{Body: "x", Public: true}}, "k")
	ze := AsError(err)
	if ze == nil || ze.Kind != KindTemporary || !ze.Ambiguous || ze.Status != 201 {
		t.Fatalf("err = %+v, want temporary ambiguous with status 201", ze)
	}
}
