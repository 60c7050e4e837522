package zendesk

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestChildEventShapes(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantType   string
		wantStatus string
		wantID     int64
		wantPublic *bool
		wantBody   string
	}{
		{name: "StatusUnderItsOwnName", in: `{"id": 5, "event_type": "Change", "status": "pending", "previous_value": "open"}`,
			wantType: "Change", wantStatus: "pending", wantID: 5},
		{name: "StatusAsFieldNameAndValue", in: `{"id": 6, "event_type": "Change", "field_name": "status", "value": "Solved", "previous_value": "open"}`,
			wantType: "Change", wantStatus: "solved", wantID: 6},
		{name: "OtherFieldChangeHasNoStatus", in: `{"id": 7, "event_type": "Change", "field_name": "priority", "value": "high"}`,
			wantType: "Change", wantID: 7},
		{name: "CommentWithStringIDAndPublic", in: `{"id": "8", "type": "Comment", "body": "hi", "public": "true", "author_id": 9, "via": {"channel": "web"}}`,
			wantType: "Comment", wantID: 8, wantPublic: ptr(true), wantBody: "hi"},
		{name: "PrivateComment", in: `{"id": 9, "event_type": "Comment", "body": "note", "public": false}`,
			wantType: "Comment", wantID: 9, wantPublic: ptr(false), wantBody: "note"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c ChildEvent
			if err := json.Unmarshal([]byte(tt.in), &c); err != nil {
				t.Fatal(err)
			}
			if c.EventType != tt.wantType || c.Status != tt.wantStatus || c.ID != tt.wantID || c.Body != tt.wantBody ||
				!reflect.DeepEqual(c.Public, tt.wantPublic) {
				t.Errorf("got %+v", c)
			}
			var all map[string]any
			_ = json.Unmarshal([]byte(tt.in), &all)
			if len(c.Raw) != len(all) {
				t.Errorf("Raw = %v, want every field of %s", c.Raw, tt.in)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestTicketEventsPage(t *testing.T) {
	srv, rec := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		_, _ = w.Write([]byte(`{"ticket_events":[{"id":1,"ticket_id":1001,"timestamp":100,"created_at":"2026-11-24T10:00:00Z","updater_id":9,
			"via":"Web form","event_type":"Audit","child_events":[{"id":11,"event_type":"Comment","body":"hello","public":true,"author_id":9,"via":{"channel":"web","source":{"rel":null}}},
			{"id":12,"event_type":"Change","status":"pending","previous_value":"open"}]}],
			"next_page":"https://acme.zendesk.com/api/v2/incremental/ticket_events.json?start_time=100","count":1,"end_of_stream":true,"end_time":100}`))
	})
	c := mustClient(t, srv.URL, nil)
	p, err := c.TicketEvents(t.Context(), time.Unix(50, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 1 || len(p.Events[0].ChildEvents) != 2 || p.Events[0].ChildEvents[1].Status != "pending" ||
		!p.EndOfStream || p.EndTime != 100 || p.Events[0].TicketID != 1001 ||
		p.Events[0].Via.Channel != "Web form" || p.Events[0].ChildEvents[0].Via.Channel != "web" {
		t.Fatalf("page = %+v", p)
	}
	r := rec.all()[0]
	if r.Path != "/api/v2/incremental/ticket_events" || r.Query != "include=comment_events&start_time=50" {
		t.Errorf("request = %s?%s", r.Path, r.Query)
	}
}

// eventsServer serves the export from pages keyed by start_time.
func eventsServer(t *testing.T, pages map[string]string) (*Client, *recorder) {
	t.Helper()
	srv, rec := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		body, ok := pages[r.URL.Query().Get("start_time")]
		if !ok || r.URL.Query().Get("include") != "comment_events" {
			t.Errorf("unexpected request %s", r.URL)
			w.WriteHeader(400)
			return
		}
		_, _ = w.Write([]byte(body))
	})
	return mustClient(t, srv.URL, nil), rec
}

func TestEachTicketEventsPage(t *testing.T) {
	t.Run("DuplicateAtPageBoundaryIsDropped", func(t *testing.T) {
		c, rec := eventsServer(t, map[string]string{
			"50": `{"ticket_events":[{"id":1,"timestamp":100},{"id":2,"timestamp":110},{"id":3,"timestamp":120}],"end_time":120,"end_of_stream":false}`,
			// 3 comes again: it sits at end_time.
			"120": `{"ticket_events":[{"id":3,"timestamp":120},{"id":4,"timestamp":130}],"next_page":"https://x/api/v2/incremental/ticket_events?start_time=130","end_of_stream":false}`,
			"130": `{"ticket_events":[{"id":4,"timestamp":130},{"id":5,"timestamp":140}],"end_time":140,"end_of_stream":true}`,
		})
		var ids []int64
		var ends []int64
		err := c.EachTicketEventsPage(t.Context(), time.Unix(50, 0), func(p *TicketEventsPage) error {
			for _, ev := range p.Events {
				ids = append(ids, ev.ID)
			}
			ends = append(ends, p.EndTime)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ids, []int64{1, 2, 3, 4, 5}) {
			t.Errorf("ids = %v, want 1..5 once each", ids)
		}
		if !reflect.DeepEqual(ends, []int64{120, 0, 140}) {
			t.Errorf("end times = %v", ends)
		}
		var starts []string
		for _, r := range rec.all() {
			starts = append(starts, r.Query)
		}
		if len(starts) != 3 {
			t.Errorf("requests = %v, want 3", starts)
		}
	})
	t.Run("CallbackErrorStops", func(t *testing.T) {
		c, rec := eventsServer(t, map[string]string{
			"50": `{"ticket_events":[{"id":1,"timestamp":100}],"end_time":100,"end_of_stream":false}`,
		})
		stop := errors.New("stop")
		err := c.EachTicketEventsPage(t.Context(), time.Unix(50, 0), func(*TicketEventsPage) error { return stop })
		if !errors.Is(err, stop) || len(rec.all()) != 1 {
			t.Fatalf("err = %v after %d requests, want stop after 1", err, len(rec.all()))
		}
	})
	t.Run("StuckExportIsAnError", func(t *testing.T) {
		c, _ := eventsServer(t, map[string]string{
			"50": `{"ticket_events":[],"end_time":50,"end_of_stream":false}`,
		})
		err := c.EachTicketEventsPage(t.Context(), time.Unix(50, 0), func(*TicketEventsPage) error { return nil })
		if KindOf(err) != KindTemporary {
			t.Fatalf("err = %v, want temporary", err)
		}
	})
	t.Run("HTTPErrorIsReturned", func(t *testing.T) {
		srv, _ := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
			writeJSON(w, 422, map[string]any{"error": "InvalidValue", "description": "start_time too recent"})
		})
		c := mustClient(t, srv.URL, nil)
		err := c.EachTicketEventsPage(t.Context(), time.Now(), func(*TicketEventsPage) error {
			t.Error("callback called after an error")
			return nil
		})
		if KindOf(err) != KindUnprocessable {
			t.Fatalf("err = %v, want unprocessable", err)
		}
	})
}
