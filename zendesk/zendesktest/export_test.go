package zendesktest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

type eventsPage struct {
	TicketEvents []struct {
		ID          int64            `json:"id"`
		TicketID    int64            `json:"ticket_id"`
		Timestamp   int64            `json:"timestamp"`
		Via         string           `json:"via"`
		EventType   string           `json:"event_type"`
		ChildEvents []map[string]any `json:"child_events"`
	} `json:"ticket_events"`
	NextPage    string `json:"next_page"`
	Count       int    `json:"count"`
	EndOfStream bool   `json:"end_of_stream"`
	EndTime     int64  `json:"end_time"`
}

func TestTicketEventsExport(t *testing.T) {
	clk := newClock()
	start := clk.Now().Unix()
	srv := zendesktest.NewServer(t, zendesktest.Config{Now: clk.Now, ExportPageSize: 3, ExportLimit: 1000})
	id := createTicket(t, srv, "c", "first")
	for i := range 6 {
		clk.Advance(time.Duration(i%2) * time.Second) // pairs of audits share a second
		srv.AgentComment(id, fmt.Sprint("reply ", i), true)
	}
	srv.SetStatus(id, "pending")
	clk.Advance(30 * time.Second)
	srv.AgentComment(id, "too recent", true) // within the lag

	t.Run("TooRecentStartTimeIs400", func(t *testing.T) {
		r := call(t, srv, "GET", fmt.Sprintf("/api/v2/incremental/ticket_events.json?start_time=%d", clk.Now().Unix()-30), nil)
		wantStatus(t, r, http.StatusBadRequest)
	})
	clk.Advance(61 * time.Second) // "too recent" is 61 s old now: visible

	seen := map[int64]bool{}
	var comments []string
	var statuses []string
	pages := 0
	next := fmt.Sprintf("/api/v2/incremental/ticket_events?start_time=%d&include=comment_events", start)
	for {
		var p eventsPage
		r := call(t, srv, "GET", next, nil)
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &p)
		pages++
		if p.Count != len(p.TicketEvents) {
			t.Errorf("count %d for %d events", p.Count, len(p.TicketEvents))
		}
		for _, e := range p.TicketEvents {
			if seen[e.ID] {
				continue // time-based pages repeat boundaries: dedupe by id
			}
			seen[e.ID] = true
			if e.EventType != "Audit" || e.TicketID != id || e.Via == "" {
				t.Errorf("event %+v", e)
			}
			for _, c := range e.ChildEvents {
				switch c["event_type"] {
				case "Comment":
					comments = append(comments, c["body"].(string))
				case "Change":
					if s, ok := c["status"].(string); ok {
						statuses = append(statuses, c["previous_value"].(string)+">"+s)
					}
				}
			}
		}
		if p.EndOfStream {
			break
		}
		u, _ := url.Parse(p.NextPage)
		next = u.Path + "?" + u.RawQuery
		if pages > 20 {
			t.Fatal("no end_of_stream")
		}
	}
	want := "first,reply 0,reply 1,reply 2,reply 3,reply 4,reply 5,too recent"
	if got := strings.Join(comments, ","); got != want {
		t.Errorf("comments = %s\nwant %s", got, want)
	}
	if got := strings.Join(statuses, ","); got != "new>pending" {
		t.Errorf("status changes = %s", got)
	}
	if pages < 3 {
		t.Errorf("%d pages with page size 3", pages)
	}

	t.Run("LagHidesTheLastMinute", func(t *testing.T) {
		srv.AgentComment(id, "fresh", true)
		var p eventsPage
		call(t, srv, "GET", fmt.Sprintf("/api/v2/incremental/ticket_events?start_time=%d&include=comment_events", clk.Now().Unix()-60), nil).decode(t, &p)
		for _, e := range p.TicketEvents {
			for _, c := range e.ChildEvents {
				if c["body"] == "fresh" {
					t.Error("a change younger than the lag was exported")
				}
			}
		}
	})
	t.Run("CommentsOnlyWithInclude", func(t *testing.T) {
		var p eventsPage
		call(t, srv, "GET", fmt.Sprintf("/api/v2/incremental/ticket_events?start_time=%d", start), nil).decode(t, &p)
		for _, e := range p.TicketEvents {
			for _, c := range e.ChildEvents {
				if c["event_type"] == "Comment" {
					t.Fatal("comment child without include=comment_events")
				}
			}
		}
	})
}

func TestExportLimit(t *testing.T) {
	clk := newClock()
	srv := zendesktest.NewServer(t, zendesktest.Config{Now: clk.Now, ExportLimit: 2})
	path := fmt.Sprintf("/api/v2/incremental/ticket_events?start_time=%d", clk.Now().Unix()-3600)
	wantStatus(t, call(t, srv, "GET", path, nil), http.StatusOK)
	wantStatus(t, call(t, srv, "GET", path, nil), http.StatusOK)
	r := call(t, srv, "GET", path, nil)
	wantStatus(t, r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") != "60" {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
}

func TestTicketCursorExport(t *testing.T) {
	clk := newClock()
	start := clk.Now().Unix()
	srv := zendesktest.NewServer(t, zendesktest.Config{Now: clk.Now, ExportLag: -1})
	var ids []int64
	for i := range 5 {
		clk.Advance(time.Second)
		ids = append(ids, createTicket(t, srv, fmt.Sprint("c", i), "x"))
	}
	clk.Advance(time.Second)
	var got []int64
	next := fmt.Sprintf("/api/v2/incremental/tickets/cursor?start_time=%d&per_page=2", start)
	for range 10 {
		var p struct {
			Tickets     []struct{ ID int64 } `json:"tickets"`
			AfterURL    string               `json:"after_url"`
			EndOfStream bool                 `json:"end_of_stream"`
		}
		call(t, srv, "GET", next, nil).decode(t, &p)
		for _, tk := range p.Tickets {
			got = append(got, tk.ID)
		}
		if p.EndOfStream {
			break
		}
		next = strings.TrimPrefix(p.AfterURL, srv.URL())
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Errorf("exported %v, want %v", got, ids)
	}
}
