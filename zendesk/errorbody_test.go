package zendesk

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// readRecorded reads testdata/errors/<name>.http, a raw HTTP response.
func readRecorded(tb testing.TB, name string) (int, http.Header, []byte) {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "errors", name+".http"))
	if err != nil {
		tb.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, body
}

// TestErrorBodiesAsRecorded: every shape in which Zendesk answers an error
// is classified, whatever its content type (see testdata/errors/README.md).
func TestErrorBodiesAsRecorded(t *testing.T) {
	tests := []struct {
		name             string
		method           string
		wantKind         Kind
		wantClosed       bool
		wantCommentLimit bool
		wantName         string
		wantMessage      string
		wantRetryAfter   time.Duration
	}{
		{name: "forbidden-object", method: "GET", wantKind: KindUnauthorized, wantName: "Forbidden",
			wantMessage: "Forbidden: You do not have access to this page. Please contact the account owner of this help desk for further help."},
		{name: "forbidden-string", method: "GET", wantKind: KindUnauthorized, wantName: "Forbidden",
			wantMessage: "Forbidden: You do not have access to this page. Please contact the account owner of this help desk for further help."},
		{name: "unauthorized", method: "GET", wantKind: KindUnauthorized, wantName: "Couldn't authenticate you", wantMessage: "Couldn't authenticate you"},
		{name: "not-found", method: "GET", wantKind: KindNotFound, wantName: "RecordNotFound", wantMessage: "RecordNotFound: Not found"},
		{name: "conflict-text", method: "POST", wantKind: KindTemporary, wantMessage: "Requester creation collision"},
		{name: "update-429-html", method: "PUT", wantKind: KindRateLimited, wantRetryAfter: 12 * time.Second,
			wantMessage: "Rate limit for ticket updates exceeded, please wait before updating this ticket again"},
		{name: "account-429-text", method: "GET", wantKind: KindRateLimited, wantRetryAfter: 30 * time.Second,
			wantMessage: "You have exceeded the rate limit. Please retry later."},
		{name: "closed", method: "PUT", wantKind: KindUnprocessable, wantClosed: true, wantName: "RecordInvalid",
			wantMessage: "RecordInvalid: Record validation errors (Status: closed prevents ticket update)"},
		{name: "closed-with-code", method: "PUT", wantKind: KindUnprocessable, wantClosed: true, wantName: "RecordInvalid",
			wantMessage: "RecordInvalid: Record validation errors (Status: closed prevents ticket update)"},
		{name: "comment-limit", method: "PUT", wantKind: KindUnprocessable, wantCommentLimit: true, wantName: "RecordInvalid",
			wantMessage: "RecordInvalid: Record validation errors (Ticket has reached the limit of 5000 comments; no more comments can be added)"},
		{name: "blank-comment", method: "PUT", wantKind: KindUnprocessable, wantName: "RecordInvalid",
			wantMessage: "RecordInvalid: Record validation errors (Comment: cannot be blank)"},
		{name: "incident-503", method: "GET", wantKind: KindTemporary, wantMessage: "Zendesk is temporarily unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := readRecorded(t, tt.name)
			e := checkResponse(&exchangeResult{op: "op", method: tt.method, status: status, header: h, body: body})
			if e == nil {
				t.Fatal("no error")
			}
			if e.Kind != tt.wantKind || e.Closed() != tt.wantClosed || e.CommentLimit() != tt.wantCommentLimit ||
				e.Name != tt.wantName || e.Message != tt.wantMessage || e.RetryAfter != tt.wantRetryAfter {
				t.Errorf("got kind %s closed %v comment limit %v name %q message %q retry %s;\nwant %s %v %v %q %q %s",
					e.Kind, e.Closed(), e.CommentLimit(), e.Name, e.Message, e.RetryAfter,
					tt.wantKind, tt.wantClosed, tt.wantCommentLimit, tt.wantName, tt.wantMessage, tt.wantRetryAfter)
			}
		})
	}
}
