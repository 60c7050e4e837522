package zendesk

import (
	"context"
	"net/http"
	"testing"
)

// A request net/http refuses to send (here an Idempotency-Key with a
// control character) is invalid, not a temporary, ambiguous failure: it
// will never be sent, and Zendesk was not asked.
func TestUnsendableRequestIsInvalid(t *testing.T) {
	srv, rec := mustServer(t, func(w http.ResponseWriter, _ *http.Request, _ recorded) {
		writeJSON(w, http.StatusCreated, map[string]any{"ticket": map[string]any{"id": 1}})
	})
	c := mustClient(t, srv.URL, nil)
	_, err := c.CreateTicket(context.Background(), NewTicket{Comment: CommentInput{Body: "hi"}}, "m\x01x")
	ze := AsError(err)
	if ze == nil || ze.Kind != KindInvalid || ze.Ambiguous || ze.Status != 0 {
		t.Fatalf("error = %#v, want KindInvalid, not ambiguous, status 0", ze)
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("%d requests reached the server, want 0", n)
	}
}
