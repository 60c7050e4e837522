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

// FuzzParseRateLimits: any header value, under any rate-limit header name
// and family, parses without panic into non-negative figures, and figures
// are Known only when some were read.
func FuzzParseRateLimits(f *testing.F) {
	for _, s := range []string{"total=20; remaining=19; resets=59", "700", "400, 400;w=60", "limit=1,remaining=0,reset=3",
		"total=; remaining=-1", "resets=5", "", ";;==;", "99999999999999999999"} {
		f.Add(s, uint8(0), uint8(0))
	}
	names := []string{"X-Rate-Limit", "X-Rate-Limit-Remaining", "Rate-Limit", "Rate-Limit-Reset", "Ratelimit-Limit",
		"Ratelimit-Remaining", "Ratelimit-Reset", "Zendesk-RateLimit-tickets-update", "Zendesk-Rate-Limit-tickets-update",
		"Zendesk-RateLimit-incremental-exports", "Retry-After"}
	rules := Families()
	f.Fuzz(func(t *testing.T, v string, name, rule uint8) {
		h := http.Header{}
		h.Set(names[int(name)%len(names)], v)
		own, account := ParseRateLimits(h, rules[int(rule)%len(rules)])
		for _, rl := range []RateLimit{own, account, ParseRateLimit(h)} {
			if rl.Limit < 0 || rl.Remaining < 0 || rl.Reset < 0 || (!rl.Known && rl != (RateLimit{})) {
				t.Fatalf("%s: %q gave %+v", names[int(name)%len(names)], v, rl)
			}
		}
	})
}
