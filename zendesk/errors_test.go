package zendesk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCheckResponse(t *testing.T) {
	closedBody := `{"error":"RecordInvalid","description":"Record validation errors","details":{"status":[{"description":"Status: closed prevents ticket update"}]}}`
	tests := []struct {
		name      string
		write     bool // PUT (AddComment) instead of GET (GetTicket)
		status    int
		header    map[string]string
		body      string
		wantErr   bool
		wantKind  Kind
		wantAmbig bool
		wantRA    time.Duration
		wantName  string
		wantMsg   string // substring of Error()
		wantClose bool
	}{
		{name: "200IsNoError", status: 200, body: `{"ticket":{"id":1}}`},
		{name: "201IsNoError", write: true, status: 201, body: `{"ticket":{"id":1}}`},
		{name: "204IsNoError", write: true, status: 204},
		{name: "400IdempotencyMismatchIsInvalid", write: true, status: 400,
			body:    `{"error":"IdempotentRequestError","description":"Request parameters don't match the given idempotency key"}`,
			wantErr: true, wantKind: KindInvalid, wantName: "IdempotentRequestError", wantMsg: "don't match"},
		{name: "401IsUnauthorized", write: true, status: 401, body: `{"error":"Couldn't authenticate you"}`,
			wantErr: true, wantKind: KindUnauthorized, wantName: "Couldn't authenticate you", wantMsg: "Couldn't authenticate you"},
		{name: "403IsUnauthorized", status: 403, body: `{"error":"Forbidden","description":"You do not have access to this page"}`,
			wantErr: true, wantKind: KindUnauthorized, wantName: "Forbidden"},
		{name: "404IsNotFound", write: true, status: 404, body: `{"error":"RecordNotFound","description":"Not found"}`,
			wantErr: true, wantKind: KindNotFound, wantName: "RecordNotFound"},
		{name: "409IsTemporaryNotAmbiguous", write: true, status: 409, body: `{"error":"UpdateConflict"}`,
			wantErr: true, wantKind: KindTemporary, wantName: "UpdateConflict"},
		{name: "422ClosedIsUnprocessableClosed", write: true, status: 422, body: closedBody,
			wantErr: true, wantKind: KindUnprocessable, wantName: "RecordInvalid", wantMsg: "closed prevents ticket update", wantClose: true},
		{name: "422OtherIsUnprocessable", write: true, status: 422,
			body:    `{"error":"RecordInvalid","description":"Record validation errors","details":{"base":[{"description":"Too many comments"}]}}`,
			wantErr: true, wantKind: KindUnprocessable, wantName: "RecordInvalid", wantMsg: "Too many comments"},
		{name: "423IsTemporaryNotAmbiguous", write: true, status: 423, body: "",
			wantErr: true, wantKind: KindTemporary, wantMsg: "Locked"},
		{name: "429WithRetryAfterWaitsThatLong", write: true, status: 429, header: map[string]string{"Retry-After": "7"},
			wantErr: true, wantKind: KindRateLimited, wantRA: 7 * time.Second},
		{name: "429WithoutRetryAfterUsesReset", status: 429, header: map[string]string{"ratelimit-reset": "12"},
			wantErr: true, wantKind: KindRateLimited, wantRA: 12 * time.Second},
		{name: "429WithoutAnyHintWaitsDefault", write: true, status: 429,
			wantErr: true, wantKind: KindRateLimited, wantRA: DefaultRetryAfter},
		{name: "500WriteIsAmbiguous", write: true, status: 500, body: `{"error":"InternalError"}`,
			wantErr: true, wantKind: KindTemporary, wantAmbig: true, wantName: "InternalError"},
		{name: "500ReadIsNotAmbiguous", status: 500,
			wantErr: true, wantKind: KindTemporary},
		{name: "502WriteIsAmbiguous", write: true, status: 502, header: map[string]string{"Content-Type": "text/html"},
			body:    "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>",
			wantErr: true, wantKind: KindTemporary, wantAmbig: true, wantMsg: ": 502 Bad Gateway"},
		{name: "503WithRetryAfterIsNotAmbiguous", write: true, status: 503, header: map[string]string{"Retry-After": "30"},
			wantErr: true, wantKind: KindTemporary, wantRA: 30 * time.Second},
		{name: "503WithoutRetryAfterIsAmbiguous", write: true, status: 503,
			wantErr: true, wantKind: KindTemporary, wantAmbig: true, wantMsg: "Service Unavailable"},
		{name: "504WriteIsAmbiguous", write: true, status: 504,
			wantErr: true, wantKind: KindTemporary, wantAmbig: true, wantMsg: "Gateway Timeout"},
		{name: "HTMLBodyWithoutTitleGivesShortText", status: 500,
			body:    "<html><body>" + strings.Repeat("<p>oops, something broke</p>", 200) + "</body></html>",
			wantErr: true, wantKind: KindTemporary, wantMsg: "oops, something broke"},
		{name: "EmptyBodyGivesStatusText", status: 500,
			wantErr: true, wantKind: KindTemporary, wantMsg: "Internal Server Error"},
		{name: "RedirectIsInvalid", write: true, status: 301, header: map[string]string{"Location": "https://elsewhere.example/"},
			wantErr: true, wantKind: KindInvalid, wantMsg: "redirect"},
		{name: "413IsInvalid", write: true, status: 413,
			wantErr: true, wantKind: KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("X-Request-Id", "req-42")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			c := mustClient(t, srv.URL, nil)
			var err error
			if tt.write {
				_, err = c.AddComment(t.Context(), 1, CommentInput{Body: "hi", Public: true}, nil)
			} else {
				_, err = c.GetTicket(t.Context(), 1)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			ze := AsError(err)
			if ze == nil {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if ze.Kind != tt.wantKind || ze.Ambiguous != tt.wantAmbig || ze.RetryAfter != tt.wantRA || ze.Status != tt.status {
				t.Errorf("got kind=%s ambiguous=%v retryAfter=%s status=%d, want %s %v %s %d",
					ze.Kind, ze.Ambiguous, ze.RetryAfter, ze.Status, tt.wantKind, tt.wantAmbig, tt.wantRA, tt.status)
			}
			if ze.Name != tt.wantName {
				t.Errorf("Name = %q, want %q", ze.Name, tt.wantName)
			}
			if ze.Closed() != tt.wantClose {
				t.Errorf("Closed() = %v, want %v", ze.Closed(), tt.wantClose)
			}
			if ze.RequestID != "req-42" {
				t.Errorf("RequestID = %q, want req-42", ze.RequestID)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Error() = %q, want it to contain %q", err.Error(), tt.wantMsg)
			}
			if len(ze.Message) > maxMessage+len("…") {
				t.Errorf("Message is %d bytes, want at most %d", len(ze.Message), maxMessage)
			}
			if strings.ContainsAny(ze.Message, "<>\n") {
				t.Errorf("Message = %q, want plain one-line text", ze.Message)
			}
		})
	}
}

func TestTransportFailures(t *testing.T) {
	tests := []struct {
		name      string
		write     bool
		start     func(t *testing.T) string // returns a base URL
		timeout   time.Duration
		wantAmbig bool
		wantIs    error
	}{
		{name: "TimeoutOfWriteIsAmbiguous", write: true, start: hangingServer, timeout: 100 * time.Millisecond,
			wantAmbig: true, wantIs: context.DeadlineExceeded},
		{name: "TimeoutOfReadIsNotAmbiguous", start: hangingServer, timeout: 100 * time.Millisecond,
			wantIs: context.DeadlineExceeded},
		{name: "ConnectionRefusedIsNotAmbiguous", write: true, start: refusedURL},
		{name: "ResetAfterWriteIsAmbiguous", write: true, start: resettingServer, wantAmbig: true},
		{name: "EOFAfterWriteIsAmbiguous", write: true, start: closingServer, wantAmbig: true},
		{name: "ResetOfReadIsNotAmbiguous", start: resettingServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := tt.start(t)
			var got []Response
			c := mustClient(t, base, func(c *Config) {
				if tt.timeout > 0 {
					c.Timeout = tt.timeout
				}
				c.OnResponse = func(r Response) { got = append(got, r) }
			})
			var err error
			if tt.write {
				_, err = c.CreateTicket(t.Context(), NewTicket{Comment: CommentInput{Body: "x", Public: true}}, "")
			} else {
				_, err = c.GetTicket(t.Context(), 1)
			}
			ze := AsError(err)
			if ze == nil {
				t.Fatalf("err = %v, want *Error", err)
			}
			if ze.Kind != KindTemporary || ze.Ambiguous != tt.wantAmbig || ze.Status != 0 {
				t.Errorf("got kind=%s ambiguous=%v status=%d, want temporary %v 0 (%v)", ze.Kind, ze.Ambiguous, ze.Status, tt.wantAmbig, err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if strings.Contains(err.Error(), "127.0.0.1") && strings.Contains(err.Error(), "/api/v2") {
				t.Errorf("Error() = %q holds the request URL", err.Error())
			}
			if len(got) != 1 || got[0].StatusCode != 0 || got[0].Op != "create ticket" && got[0].Op != "get ticket" {
				t.Errorf("OnResponse calls = %+v, want one with status 0", got)
			}
		})
	}
}

func TestCanceledContextIsTemporary(t *testing.T) {
	srv, _ := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) { <-r.Context().Done() })
	c := mustClient(t, srv.URL, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.GetTicket(ctx, 1)
	if KindOf(err) != KindTemporary || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want temporary wrapping context.Canceled", err)
	}
}

// hangingServer answers nothing until the client gives up.
func hangingServer(t *testing.T) string {
	t.Helper()
	srv, _ := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	return srv.URL
}

// refusedURL is an address where nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

// resettingServer reads the whole request, then resets the connection.
func resettingServer(t *testing.T) string {
	return cuttingServer(t, true)
}

// closingServer reads the whole request, then closes the connection (EOF).
func closingServer(t *testing.T) string {
	return cuttingServer(t, false)
}

func cuttingServer(t *testing.T, reset bool) string {
	t.Helper()
	srv, _ := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(fmt.Sprintf("hijack: %v", err))
		}
		if tc, ok := conn.(*net.TCPConn); ok && reset {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
	})
	return srv.URL
}
