package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/deskrelay/deskrelay/internal/textx"
)

// demoSink is the platform: it verifies each delivery's signature, counts
// the deliveries of each event, and tells the story of the first one.
type demoSink struct {
	*httptest.Server
	d  *demo
	wh *standardwebhooks.Webhook

	mu      sync.Mutex
	count   map[string]int    // event id → deliveries
	sources map[string]string // event id → the source of its first delivery
	echoes  int
	badSig  int
}

// sinkStats is what the platform received.
type sinkStats struct {
	viaWebhook, viaReconcile, duplicates, echoes, badSig int
}

func newDemoSink(d *demo) *demoSink {
	wh, err := standardwebhooks.NewWebhook(demoSinkSecret)
	if err != nil {
		panic(err) // a constant secret
	}
	s := &demoSink{d: d, wh: wh, count: map[string]int{}, sources: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// sinkEvent is the part of a delivery the platform looks at.
type sinkEvent struct {
	Type           string `json:"type"`
	ID             string `json:"id"`
	ConversationID string `json:"conversation_id"`
	Status         string `json:"status"`
	Source         string `json:"source"`
	Comment        *struct {
		Body   string `json:"body"`
		Author struct {
			Role string `json:"role"`
		} `json:"author"`
	} `json:"comment"`
}

func (s *demoSink) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := s.wh.Verify(body, r.Header); err != nil {
		s.mu.Lock()
		s.badSig++
		s.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev sinkEvent
	_ = json.Unmarshal(body, &ev)
	s.mu.Lock()
	s.count[ev.ID]++
	first := s.count[ev.ID] == 1
	if first {
		s.sources[ev.ID] = ev.Source
	}
	if ev.Comment != nil && ev.Comment.Author.Role != "agent" {
		s.echoes++
	}
	s.mu.Unlock()
	if first {
		what := "status → " + ev.Status
		if ev.Comment != nil {
			what = fmt.Sprintf("%q", textx.Truncate(strings.TrimSpace(ev.Comment.Body), 60))
		}
		s.d.say("platform ← %s %s: %s (via %s)", ev.ConversationID, strings.TrimPrefix(ev.Type, "ticket."), what, ev.Source)
	}
	w.WriteHeader(http.StatusNoContent)
}

// unique is the number of distinct events received.
func (s *demoSink) unique() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.count)
}

func (s *demoSink) stats() sinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := sinkStats{echoes: s.echoes, badSig: s.badSig}
	for id, n := range s.count {
		st.duplicates += n - 1
		if s.sources[id] == "webhook" {
			st.viaWebhook++
		} else {
			st.viaReconcile++
		}
	}
	return st
}

func (s *demoSink) URL() string { return s.Server.URL }
