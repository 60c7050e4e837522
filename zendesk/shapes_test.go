package zendesk

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func mustShape(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "shapes", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// shapeServer answers each "METHOD path" with a fixture's bytes.
func shapeServer(t *testing.T, routes map[string][]byte) *Client {
	t.Helper()
	srv, _ := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		body, ok := routes[r.Method+" "+r.URL.Path]
		if !ok {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	return mustClient(t, srv.URL, nil)
}

func TestInvocationStatusesAsRecorded(t *testing.T) {
	c := shapeServer(t, map[string][]byte{
		"GET /api/v2/webhooks/wh1/invocations":                mustShape(t, "invocations.json"),
		"GET /api/v2/webhooks/wh1/invocations/01HV4/attempts": mustShape(t, "attempts-terminated.json"),
	})
	p, err := c.ListInvocations(t.Context(), "wh1", InvocationFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		status    string
		code      int
		delivered bool
	}{
		{InvocationSuccess, 200, true}, {InvocationFailed, 500, false}, {InvocationTimeout, 0, false},
		{InvocationTerminated, 403, false}, {InvocationThrottled, 0, false}, {InvocationThrottled, 0, false},
		{InvocationCircuitBroken, 0, false},
	}
	if len(p.Invocations) != len(want) {
		t.Fatalf("got %d invocations, want %d", len(p.Invocations), len(want))
	}
	for i, w := range want {
		got := p.Invocations[i]
		if got.Status != w.status || got.StatusCode != w.code || got.Delivered() != w.delivered || got.LatestCompletedAt.IsZero() {
			t.Errorf("invocation %d = %+v (delivered %v), want %s %d %v", i, got, got.Delivered(), w.status, w.code, w.delivered)
		}
	}
	at, err := c.InvocationAttempts(t.Context(), "wh1", "01HV4")
	if err != nil || len(at) != 1 || at[0].Status != InvocationTerminated || at[0].StatusCode != 403 || at[0].Request.Payload != `{"ticket_id":"1001"}` {
		t.Fatalf("attempts = %+v, %v; want the terminated attempt with its payload", at, err)
	}
}

func TestAuditEventValuesAsRecorded(t *testing.T) {
	c := shapeServer(t, map[string][]byte{"GET /api/v2/tickets/1001/audits": mustShape(t, "audits.json")})
	audits, err := c.ListAudits(t.Context(), 1001)
	if err != nil || len(audits) != 1 {
		t.Fatalf("ListAudits = %d audits, %v", len(audits), err)
	}
	a := audits[0]
	if a.Metadata.CustomString("deskrelay_message_id") != "msg_1" {
		t.Errorf("custom metadata = %v", a.Metadata.Custom)
	}
	tests := []struct {
		name  string
		id    int64
		value any
	}{
		{"String", 12, "Help"},
		{"NumericString", 13, "77"},
		{"Null", 14, nil},
		{"Array", 15, []any{"deskrelay", "ios"}},
		{"Number", 16, float64(7)},
		{"Change", 19, "pending"},
	}
	byID := map[int64]AuditEvent{}
	for _, e := range a.Events {
		byID[e.ID] = e
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := byID[tt.id].Value; !reflect.DeepEqual(got, tt.value) {
				t.Errorf("event %d value = %#v, want %#v", tt.id, got, tt.value)
			}
		})
	}
	n := byID[18]
	if n.Type != "Notification" || !reflect.DeepEqual(n.Recipients, []int64{77}) || n.Via == nil || n.Via.Channel != "rule" {
		t.Errorf("notification = %+v, want recipients [77] via rule", n)
	}
}

func TestTicketEventChildrenAsRecorded(t *testing.T) {
	var p TicketEventsPage
	if err := json.Unmarshal(mustShape(t, "ticket-events.json"), &p); err != nil {
		t.Fatal(err)
	}
	ev := p.Events[0]
	if ev.Via == nil || ev.Via.Channel != "Web form" {
		t.Errorf("event via = %+v, want the string form", ev.Via)
	}
	tests := []struct {
		name, eventType, channel, status string
	}{
		{"CommentWithViaObject", "Comment", "web", ""},
		{"ChangeWithViaObject", "Change", "web", "pending"},
		{"Notification", "Notification", "rule", ""},
		{"CreateWithViaString", "Create", "Web form", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := ev.ChildEvents[i]
			if ch.EventType != tt.eventType || ch.Via == nil || ch.Via.Channel != tt.channel || ch.Status != tt.status {
				t.Errorf("child = %+v (via %+v), want %s via %s status %q", ch, ch.Via, tt.eventType, tt.channel, tt.status)
			}
		})
	}
}

func TestTargetTypesAsRecorded(t *testing.T) {
	var set map[string]struct {
		Target Target `json:"target"`
	}
	if err := json.Unmarshal(mustShape(t, "targets.json"), &set); err != nil {
		t.Fatal(err)
	}
	if set["http"].Target.Type != "http_target" || set["http"].Target.Active || set["email"].Target.Type != "email_target" ||
		set["email"].Target.CreatedAt != time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC) {
		t.Errorf("targets = %+v", set)
	}
}
