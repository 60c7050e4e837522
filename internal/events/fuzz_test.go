package events_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/deskrelay/deskrelay/internal/events"
)

// checkPayload holds for any body: no panic, errors wrap ErrMalformed, and
// every event produced is valid and survives a JSON round trip.
func checkPayload(t *testing.T, body []byte) {
	p, err := events.ParsePayload(body, events.SourceWebhook)
	if err != nil {
		if !errors.Is(err, events.ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
		if p != nil {
			t.Fatal("payload with an error")
		}
		return
	}
	if p.Ignored && (len(p.Events) > 0 || p.Comment != nil) {
		t.Fatal("ignored payload with events")
	}
	for _, ev := range p.Events {
		if err := ev.Validate(); err != nil {
			t.Fatalf("invalid event %+v: %v", ev, err)
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var back events.Event
		if err := json.Unmarshal(b, &back); err != nil || back.ID != ev.ID {
			t.Fatalf("round trip: %v %q", err, back.ID)
		}
	}
	if p.Comment != nil && p.Comment.ID <= 0 {
		t.Fatalf("comment ref %d", p.Comment.ID)
	}
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(commentEnvelope))
	f.Add([]byte(statusEnvelope))
	f.Add([]byte(`{"type":"zen:event-type:ticket.comment_added","subject":"zen:ticket:9","time":"2026-11-24T10:05:00Z","event":{"comment":{"id":"1","author":{"is_staff":"true"}}}}`))
	f.Add([]byte(`{"type":"zen:event-type:user.created"}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkPayload(t, body) })
}

func FuzzParseTrigger(f *testing.F) {
	f.Add([]byte(`{"ticket_id":"1001","external_id":"conv_42","status":"Pending","updated_at":"2026-11-24T10:06:00Z","comment_id":"555","comment_public":"true","comment_author_id":"9"}`))
	f.Add([]byte(events.TriggerBody))
	f.Add([]byte(`{"ticket_id":7,"status":null,"comment_id":""}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkPayload(t, body) })
}
