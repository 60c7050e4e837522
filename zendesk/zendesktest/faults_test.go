package zendesktest_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

func TestRateLimit(t *testing.T) {
	t.Run("AccountLimitAnswers429WithRetryAfter", func(t *testing.T) {
		clk := newClock()
		srv := zendesktest.NewServer(t, zendesktest.Config{RateLimit: 3, Now: clk.Now})
		for i := range 3 {
			r := call(t, srv, "GET", "/api/v2/users/me", nil)
			wantStatus(t, r, http.StatusOK)
			if r.header.Get("X-Rate-Limit") != "3" || r.header.Get("X-Rate-Limit-Remaining") != strconv.Itoa(2-i) {
				t.Errorf("request %d: X-Rate-Limit %q remaining %q", i, r.header.Get("X-Rate-Limit"), r.header.Get("X-Rate-Limit-Remaining"))
			}
		}
		clk.Advance(20 * time.Second)
		r := call(t, srv, "GET", "/api/v2/users/me", nil)
		wantStatus(t, r, http.StatusTooManyRequests)
		if r.header.Get("Retry-After") != "40" || r.header.Get("X-Rate-Limit-Remaining") != "0" {
			t.Errorf("Retry-After %q remaining %q", r.header.Get("Retry-After"), r.header.Get("X-Rate-Limit-Remaining"))
		}
		clk.Advance(40 * time.Second)
		wantStatus(t, call(t, srv, "GET", "/api/v2/users/me", nil), http.StatusOK)
	})
	t.Run("UpdateTicketLimit", func(t *testing.T) {
		srv := zendesktest.NewServer(t, zendesktest.Config{UpdateTicketLimit: 2, Window: time.Hour})
		id := createTicket(t, srv, "c", "x")
		for range 2 {
			r := addComment(t, srv, id, "y")
			wantStatus(t, r, http.StatusOK)
			if r.header.Get("ratelimit-limit") != "200" || !strings.HasPrefix(r.header.Get("Zendesk-RateLimit-tickets-update"), "total=2;") {
				t.Errorf("endpoint headers: %v", r.header)
			}
		}
		r := addComment(t, srv, id, "z")
		wantStatus(t, r, http.StatusTooManyRequests)
		if r.header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		wantStatus(t, call(t, srv, "GET", fmt.Sprintf("/api/v2/tickets/%d", id), nil), http.StatusOK)
		if n := len(srv.Comments(id)); n != 3 {
			t.Errorf("%d comments, want 3 (the limited one not applied)", n)
		}
	})
}

func TestPerTicketUpdateLimit(t *testing.T) {
	clk := newClock()
	srv := zendesktest.NewServer(t, zendesktest.Config{Now: clk.Now})
	id := createTicket(t, srv, "c", "x")
	other := createTicket(t, srv, "d", "x")
	wantStatus(t, addComment(t, srv, id, "first"), http.StatusOK)
	clk.Advance(4 * time.Minute)
	for range 29 {
		wantStatus(t, addComment(t, srv, id, "y"), http.StatusOK)
	}
	r := addComment(t, srv, id, "one too many")
	wantStatus(t, r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") != "360" { // until the first update is 10 minutes old
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	wantStatus(t, addComment(t, srv, other, "y"), http.StatusOK)
	clk.Advance(6 * time.Minute)
	wantStatus(t, addComment(t, srv, id, "later"), http.StatusOK)
	wantStatus(t, addComment(t, srv, id, "again too many"), http.StatusTooManyRequests)
}

func TestFaults(t *testing.T) {
	srv := zendesktest.NewServer(t)
	t.Run("DownAnswers503HTML", func(t *testing.T) {
		srv.Down()
		r := call(t, srv, "GET", "/api/v2/users/me", nil)
		srv.Up()
		wantStatus(t, r, http.StatusServiceUnavailable)
		if r.header.Get("Retry-After") != "" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Errorf("headers %v", r.header)
		}
		wantStatus(t, call(t, srv, "GET", "/api/v2/users/me", nil), http.StatusOK)
	})
	t.Run("FailNextWithRetryAfter", func(t *testing.T) {
		srv.FailNext(2, http.StatusTooManyRequests, zendesktest.RetryAfter(1500*time.Millisecond))
		for range 2 {
			r := call(t, srv, "GET", "/api/v2/users/me", nil)
			wantStatus(t, r, http.StatusTooManyRequests)
			if r.header.Get("Retry-After") != "2" {
				t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
			}
		}
		wantStatus(t, call(t, srv, "GET", "/api/v2/users/me", nil), http.StatusOK)
	})
	t.Run("FailNextMatchingOnlyHitsMatchingRequests", func(t *testing.T) {
		id := createTicket(t, srv, "c", "x")
		srv.FailNext(1, http.StatusBadGateway, zendesktest.Matching("PUT", "/api/v2/tickets/"), zendesktest.Body(""))
		wantStatus(t, call(t, srv, "GET", fmt.Sprintf("/api/v2/tickets/%d", id), nil), http.StatusOK)
		r := addComment(t, srv, id, "y")
		wantStatus(t, r, http.StatusBadGateway)
		if len(r.body) != 0 || len(srv.Comments(id)) != 1 {
			t.Errorf("body %q, %d comments", r.body, len(srv.Comments(id)))
		}
	})
	t.Run("LostResponseWasApplied", func(t *testing.T) {
		id := createTicket(t, srv, "c", "x")
		srv.LoseNext(1)
		req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/api/v2/tickets/%d", srv.URL(), id),
			strings.NewReader(`{"ticket":{"comment":{"body":"ambiguous","public":true}}}`))
		req.SetBasicAuth(srv.Email()+"/token", srv.APIToken())
		req.Header.Set("Content-Type", "application/json")
		res, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err == nil {
			res.Body.Close()
			t.Fatalf("got %d, want a transport error", res.StatusCode)
		}
		cs := srv.Comments(id)
		if len(cs) != 2 || cs[1].Body != "ambiguous" {
			t.Errorf("comments = %+v, want the lost write applied", cs)
		}
		reqs := srv.Requests()
		if last := reqs[len(reqs)-1]; !last.Lost || last.Status != http.StatusOK {
			t.Errorf("recorded %+v", last)
		}
	})
}

func TestAuth(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{OAuthTokens: []string{"fixed"}})
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"APITokenAccepted", "", http.StatusOK},
		{"BearerAccepted", "Bearer fixed", http.StatusOK},
		{"WrongTokenRejected", "Basic " + "cmVsYXlAZXhhbXBsZS5jb20vdG9rZW46d3Jvbmc=", http.StatusUnauthorized},
		{"WrongBearerRejected", "Bearer nope", http.StatusUnauthorized},
		{"MissingRejected", "none", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			switch tt.header {
			case "":
			case "none":
				hdr = []string{"Authorization", ""}
			default:
				hdr = []string{"Authorization", tt.header}
			}
			r := call(t, srv, "GET", "/api/v2/users/me.json", nil, hdr...)
			wantStatus(t, r, tt.want)
			if tt.want == 401 && string(r.body) != `{"error":"Couldn't authenticate you"}` {
				t.Errorf("body = %s", r.body)
			}
		})
	}
	t.Run("RevokedThenRestored", func(t *testing.T) {
		srv.RevokeCredentials()
		wantStatus(t, call(t, srv, "GET", "/api/v2/users/me", nil), http.StatusUnauthorized)
		wantStatus(t, call(t, srv, "GET", "/api/v2/users/me", nil, "Authorization", "Bearer fixed"), http.StatusUnauthorized)
		srv.SetCredentials("new@example.com", "new-token")
		wantStatus(t, call(t, srv, "GET", "/api/v2/users/me", nil), http.StatusOK)
	})
	t.Run("RecorderDropsCredentials", func(t *testing.T) {
		for _, r := range srv.Requests() {
			if r.Header.Get("Authorization") != "" {
				t.Fatalf("recorded credentials: %+v", r)
			}
		}
		if n := srv.CountRequests("GET", "/api/v2/users/me"); n < 7 {
			t.Errorf("CountRequests = %d", n)
		}
	})
}

func TestUnknownPathFailsTheTest(t *testing.T) {
	rtb := &recordingTB{TB: t}
	srv := zendesktest.NewServer(rtb)
	r := call(t, srv, "GET", "/api/v2/nothing/here", nil)
	wantStatus(t, r, http.StatusNotFound)
	if len(rtb.errs) != 1 || !strings.Contains(rtb.errs[0], "GET /api/v2/nothing/here") {
		t.Errorf("errors = %q, want one naming GET /api/v2/nothing/here", rtb.errs)
	}
	t.Run("StartOnlyLogs", func(t *testing.T) {
		var logged []string
		srv, err := zendesktest.Start(zendesktest.Config{Logf: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		wantStatus(t, call(t, srv, "DELETE", "/api/v2/tickets", nil), http.StatusNotFound)
		if len(logged) != 1 || !strings.Contains(logged[0], "DELETE /api/v2/tickets") {
			t.Errorf("logged %q", logged)
		}
	})
}
