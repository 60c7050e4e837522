package zendesk

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkCreateTicket measures one create round trip against a local
// httptest server: the client's own overhead (encode, headers, classify,
// decode) plus loopback HTTP.
func BenchmarkCreateTicket(b *testing.B) {
	srv, _ := mustServer(b, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		w.Header().Set("X-Rate-Limit", "700")
		w.Header().Set("X-Rate-Limit-Remaining", "699")
		writeJSON(w, 201, map[string]any{"ticket": map[string]any{"id": 1001, "status": "new"},
			"audit": map[string]any{"id": 1, "events": []any{map[string]any{"id": 555, "type": "Comment"}}}})
	})
	c := mustClient(b, srv.URL, func(c *Config) { c.OnResponse = func(Response) {} })
	t := NewTicket{Subject: "s", Comment: CommentInput{Body: "The app crashes when …", Public: true},
		Requester: &Requester{Name: "Ann", Email: "ann@example.com"}, ExternalID: "conv_42", Tags: []string{"deskrelay"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.CreateTicket(b.Context(), t, "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckResponse(b *testing.B) {
	h := http.Header{"Retry-After": {"7"}, "X-Rate-Limit": {"700"}, "X-Rate-Limit-Remaining": {"0"}, "X-Request-Id": {"r"}}
	body := []byte(`{"error":"RecordInvalid","description":"Record validation errors","details":{"status":[{"description":"Status: closed prevents ticket update"}]}}`)
	b.ReportAllocs()
	for b.Loop() {
		x := exchangeResult{op: "update ticket", method: http.MethodPut, status: 422, header: h, body: body, secrets: []string{testToken}}
		if e := checkResponse(&x); e == nil || !e.Closed() {
			b.Fatal("want closed")
		}
	}
}

func BenchmarkVerifySignature(b *testing.B) {
	body := make([]byte, 2048)
	ts := "2026-11-24T10:00:00Z"
	sig := Sign(TestSigningSecret, ts, body)
	now := time.Date(2026, 11, 24, 10, 0, 1, 0, time.UTC)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifySignature(TestSigningSecret, body, ts, sig, now, 5*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
