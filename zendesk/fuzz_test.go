package zendesk

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// FuzzChildEvent: decoding an export child event never panics, and what
// decodes keeps Raw filled.
func FuzzChildEvent(f *testing.F) {
	for _, s := range []string{
		`{"id": 5, "event_type": "Change", "status": "pending", "previous_value": "open"}`,
		`{"id": "6", "type": "Change", "field_name": "status", "value": 7}`,
		`{"id": 8, "event_type": "Comment", "public": "yes", "via": "Web form", "metadata": {"custom": {"custom": {}}}}`,
		`{"via": {"channel": 4, "source": []}}`, `null`, `[]`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c ChildEvent
		if err := json.Unmarshal(b, &c); err == nil && c.Raw == nil && strings.TrimSpace(string(b)) != "null" {
			t.Fatalf("decoded %q without Raw", b)
		}
		var p TicketEventsPage
		_ = json.Unmarshal(b, &p)
	})
}

// FuzzParseErrorBody: any error body gives a bounded one-line message.
func FuzzParseErrorBody(f *testing.F) {
	for _, s := range []string{
		`{"error":"RecordInvalid","description":"Record validation errors","details":{"status":[{"description":"Status: closed prevents ticket update"}]}}`,
		`{"error":{"title":"Forbidden","message":"no"}}`, `{"errors":[{"code":"X","title":"t","detail":"d"}]}`,
		`<html><title>502</title></html>`, "", "\x00\xff", `{"error": 5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, msg, _ := parseErrorBody(http.Header{}, b)
		if len(msg) > maxMessage+len("…") || strings.ContainsAny(msg, "\n\r") {
			t.Fatalf("message %q from %q", msg, b)
		}
	})
}
