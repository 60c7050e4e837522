package zendesktest_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

func TestConcurrentIdempotentCreatesMakeOneTicket(t *testing.T) {
	srv := zendesktest.NewServer(t)
	body := map[string]any{"ticket": map[string]any{"comment": map[string]any{"body": "hi", "public": true}, "external_id": "c"}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	hits := 0
	for range 20 {
		wg.Go(func() {
			r := call(t, srv, "POST", "/api/v2/tickets", body, "Idempotency-Key", "same")
			if r.status != http.StatusCreated {
				t.Errorf("status %d", r.status)
			}
			if r.header.Get("x-idempotency-lookup") == "hit" {
				mu.Lock()
				hits++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if n := len(srv.Tickets()); n != 1 || hits != 19 {
		t.Errorf("%d tickets and %d hits, want 1 and 19", n, hits)
	}
}

func TestCreateTicketSeedsWithoutHTTP(t *testing.T) {
	srv := zendesktest.NewServer(t)
	id := srv.CreateTicket(zendesk.NewTicket{Subject: "s", ExternalID: "conv_1", Comment: zendesk.CommentInput{Body: "b", Public: true},
		Requester: &zendesk.Requester{Name: "Ann", Email: "ann@example.com"}})
	tk, ok := srv.Ticket(id)
	if !ok || tk.ExternalID != "conv_1" || tk.Description != "b" || len(srv.Requests()) != 0 {
		t.Errorf("ticket %+v ok %v, %d requests", tk, ok, len(srv.Requests()))
	}
}

// BenchmarkCreateTicket measures one ticket creation over HTTP (a loopback
// round trip through the fake).
func BenchmarkCreateTicket(b *testing.B) {
	srv := zendesktest.NewServer(b, zendesktest.Config{RateLimit: 1 << 30})
	body := `{"ticket":{"comment":{"body":"hello","public":true},"requester":{"name":"Ann","email":"ann@example.com"},"external_id":"c"}}`
	client := &http.Client{}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req, _ := http.NewRequest("POST", srv.URL()+"/api/v2/tickets", strings.NewReader(body))
		req.SetBasicAuth(srv.Email()+"/token", srv.APIToken())
		req.Header.Set("Idempotency-Key", fmt.Sprint("k", i))
		res, err := client.Do(req)
		if err != nil || res.StatusCode != http.StatusCreated {
			b.Fatalf("%v %v", err, res)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}

// BenchmarkAddCommentParallel measures comments added to one ticket by
// concurrent clients.
func BenchmarkAddCommentParallel(b *testing.B) {
	srv := zendesktest.NewServer(b, zendesktest.Config{RateLimit: 1 << 30, UpdateTicketLimit: 1 << 30, MaxComments: 1 << 30, PerTicketUpdateLimit: -1})
	id := srv.CreateTicket(zendesk.NewTicket{Comment: zendesk.CommentInput{Body: "x", Public: true}})
	url := fmt.Sprintf("%s/api/v2/tickets/%d", srv.URL(), id)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		client := &http.Client{}
		for pb.Next() {
			req, _ := http.NewRequest("PUT", url, strings.NewReader(`{"ticket":{"comment":{"body":"y","public":true}}}`))
			req.SetBasicAuth(srv.Email()+"/token", srv.APIToken())
			res, err := client.Do(req)
			if err != nil || res.StatusCode != http.StatusOK {
				b.Fatalf("%v %v", err, res)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	})
}

// BenchmarkTicketEventsPage measures one 1000-event page of the incremental
// ticket events export out of 50,000 events.
func BenchmarkTicketEventsPage(b *testing.B) {
	clk := newClock()
	srv := zendesktest.NewServer(b, zendesktest.Config{Now: clk.Now, RateLimit: 1 << 30, ExportLimit: 1 << 30})
	start := clk.Now().Unix()
	id := srv.CreateTicket(zendesk.NewTicket{Comment: zendesk.CommentInput{Body: "x", Public: true}})
	for i := range 50000 {
		if i%10 == 0 {
			clk.Advance(time.Second)
		}
		srv.AgentComment(id, "reply", true)
	}
	clk.Advance(time.Hour)
	url := fmt.Sprintf("%s/api/v2/incremental/ticket_events?start_time=%d&include=comment_events", srv.URL(), start+2500)
	client := &http.Client{}
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest("GET", url, nil)
		req.SetBasicAuth(srv.Email()+"/token", srv.APIToken())
		res, err := client.Do(req)
		if err != nil || res.StatusCode != http.StatusOK {
			b.Fatalf("%v %v", err, res)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}
