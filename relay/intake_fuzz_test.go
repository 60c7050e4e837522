package relay

import (
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzDecodeMessage feeds POST /v1/messages bodies to the decoder: it never
// panics, answers only 400 or 422 on errors, and what it accepts is a valid
// message that survives a JSON round trip unchanged.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"id":"m1","conversation_id":"c1","sequence":3,"author":{"id":"u","name":"Ann","email":"ann@example.com"},"body":"hi","subject":"s","created_at":"2026-11-24T10:00:00Z","tags":["a"],"custom_fields":[{"id":1,"value":"x"}],"account":"default"}`,
		`{"id":"m1","conversation_id":"c1","author":{"id":"u"},"body":"hi"}`,
		`{"id":"m1","conversation_id":"c1","sequence":1.5,"author":{"id":"u"},"body":"hi"}`,
		`{"id":1}`, `[]`, `null`, `{`, `{"id":"m1"} x`, `{"author":"x"}`, `{"created_at":"bad"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := decodeMessage(body)
		if err != nil {
			if err.status != http.StatusBadRequest && err.status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d for %q", err.status, body)
			}
			if err.code == "" || err.message == "" {
				t.Fatalf("empty error for %q", body)
			}
			return
		}
		if verr := m.Validate(); verr != nil {
			t.Fatalf("accepted an invalid message %q: %v", body, verr)
		}
		again, err2 := json.Marshal(m)
		if err2 != nil {
			t.Fatalf("marshal: %v", err2)
		}
		var back Message
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatalf("round trip of %s: %v", again, err)
		}
		h1, _, _ := m.contentHash()
		h2, _, _ := back.contentHash()
		if h1 != h2 {
			t.Fatalf("content hash changed in a round trip: %s", again)
		}
	})
}
