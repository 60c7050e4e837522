package zendesktest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// call sends a request with the default API-token credentials.
func call(t testing.TB, srv *zendesktest.Server, method, path string, body any, headers ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			raw, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			rd = bytes.NewReader(raw)
		}
	}
	req, err := http.NewRequest(method, srv.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(srv.Email()+"/token", srv.APIToken())
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Authorization" && headers[i+1] == "" {
			req.Header.Del("Authorization")
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{res.StatusCode, res.Header, b}
}

func wantStatus(t testing.TB, r reply, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d; body %s", r.status, want, r.body)
	}
}

type created struct {
	Ticket struct {
		ID          int64  `json:"id"`
		Status      string `json:"status"`
		Description string `json:"description"`
		RequesterID int64  `json:"requester_id"`
	} `json:"ticket"`
	Audit struct {
		ID     int64 `json:"id"`
		Events []struct {
			ID   int64  `json:"id"`
			Type string `json:"type"`
		} `json:"events"`
	} `json:"audit"`
}

func createTicket(t testing.TB, srv *zendesktest.Server, external, body string) int64 {
	t.Helper()
	r := call(t, srv, "POST", "/api/v2/tickets.json", map[string]any{"ticket": map[string]any{
		"subject": "Help", "external_id": external,
		"comment":   map[string]any{"body": body, "public": true},
		"requester": map[string]any{"name": "Ann Lee", "email": "ann@example.com"},
	}})
	wantStatus(t, r, http.StatusCreated)
	var c created
	r.decode(t, &c)
	return c.Ticket.ID
}

func addComment(t testing.TB, srv *zendesktest.Server, id int64, body string) reply {
	t.Helper()
	return call(t, srv, "PUT", fmt.Sprintf("/api/v2/tickets/%d.json", id), map[string]any{"ticket": map[string]any{
		"comment": map[string]any{"body": body, "public": true}}})
}

// Every kind of test can make a fake: NewServer takes zendesktest.TB, which
// package testing's types satisfy without the fake importing testing.
var (
	_ zendesktest.TB = (*testing.T)(nil)
	_ zendesktest.TB = (*testing.B)(nil)
	_ zendesktest.TB = (*testing.F)(nil)
	_ zendesktest.TB = testing.TB(nil)
)

// recordingTB captures Errorf so a test can assert that the fake failed it.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// sink is a webhook endpoint that records what it receives and answers with
// the statuses it is told to.
type sink struct {
	mu       sync.Mutex
	requests []sinkRequest
	answer   func(n int) (status int, header map[string]string)
}

type sinkRequest struct {
	header http.Header
	body   []byte
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, sinkRequest{r.Header.Clone(), b})
	n := len(s.requests)
	answer := s.answer
	s.mu.Unlock()
	status := http.StatusOK
	if answer != nil {
		var h map[string]string
		status, h = answer(n)
		for k, v := range h {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(status)
}

func (s *sink) got() []sinkRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkRequest(nil), s.requests...)
}

func (s *sink) setAnswer(f func(n int) (int, map[string]string)) {
	s.mu.Lock()
	s.answer = f
	s.mu.Unlock()
}

func always(status int) func(int) (int, map[string]string) {
	return func(int) (int, map[string]string) { return status, nil }
}
