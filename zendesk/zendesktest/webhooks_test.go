package zendesktest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

func newSink(t *testing.T) (*sink, string) {
	t.Helper()
	s := &sink{}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs.URL
}

func TestWebhookEnvelopeIsSigned(t *testing.T) {
	clk := newClock()
	srv := zendesktest.NewServer(t, zendesktest.Config{Now: clk.Now})
	snk, url := newSink(t)
	const secret = "s3cret"
	hook := srv.AddWebhook(url, secret, zendesktest.EventCommentAdded, zendesktest.EventStatusChanged)
	id := createTicket(t, srv, "conv_42", "hello")
	if n := len(snk.got()); n != 0 {
		t.Fatalf("API write notified %d times; NotifyAPIWrites is off", n)
	}

	cid := srv.AgentReply(id, "We are on it", true, "pending")
	got := snk.got()
	if len(got) != 2 {
		t.Fatalf("got %d deliveries, want comment_added and status_changed", len(got))
	}
	for _, r := range got {
		h := r.header
		if err := zendesk.VerifySignature(secret, r.body, h.Get(zendesk.HeaderSignatureTimestamp), h.Get(zendesk.HeaderSignature), clk.Now(), 5*time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		if h.Get("User-Agent") != "Zendesk Webhook" || h.Get("X-Zendesk-Webhook-Id") != hook ||
			h.Get("X-Zendesk-Account-Id") != strconv.Itoa(zendesktest.DefaultAccountID) || h.Get("X-Zendesk-Webhook-Invocation-Id") == "" {
			t.Errorf("headers %v", h)
		}
	}
	var comment struct {
		AccountID int64  `json:"account_id"`
		ID        string `json:"id"`
		Subject   string `json:"subject"`
		Type      string `json:"type"`
		Version   string `json:"zendesk_event_version"`
		Detail    struct {
			ID, ExternalID, Status, RequesterID, UpdatedAt string
		} `json:"detail"`
		Event struct {
			Comment struct {
				ID       int64  `json:"id"`
				Body     string `json:"body"`
				IsPublic bool   `json:"is_public"`
				Author   struct {
					ID      string `json:"id"`
					IsStaff bool   `json:"is_staff"`
				} `json:"author"`
			} `json:"comment"`
		} `json:"event"`
	}
	if err := json.Unmarshal(got[0].body, &comment); err != nil {
		t.Fatal(err)
	}
	var raw map[string]map[string]any
	_ = json.Unmarshal(got[0].body, &raw)
	d := raw["detail"]
	if comment.Type != zendesktest.EventCommentAdded || comment.Subject != fmt.Sprintf("zen:ticket:%d", id) || comment.Version != "2022-11-06" ||
		d["id"] != strconv.FormatInt(id, 10) || d["external_id"] != "conv_42" || d["status"] != "PENDING" ||
		comment.Event.Comment.ID != cid || !comment.Event.Comment.IsPublic || !comment.Event.Comment.Author.IsStaff ||
		comment.Event.Comment.Author.ID != strconv.FormatInt(srv.AgentID(), 10) || len(comment.ID) != 36 {
		t.Errorf("comment envelope = %s", got[0].body)
	}
	var status struct {
		Type  string            `json:"type"`
		Event map[string]string `json:"event"`
	}
	_ = json.Unmarshal(got[1].body, &status)
	if status.Type != zendesktest.EventStatusChanged || status.Event["current"] != "PENDING" || status.Event["previous"] != "NEW" {
		t.Errorf("status envelope = %s", got[1].body)
	}
	invs := srv.Invocations(hook)
	if len(invs) != 2 || invs[0].Status != "success" || invs[0].StatusCode != 200 {
		t.Errorf("invocations = %+v", invs)
	}
	if at := srv.Attempts(hook, invs[0].ID); len(at) != 1 || at[0].Request.Payload != string(got[0].body) {
		t.Errorf("attempts = %+v", at)
	}

	t.Run("TriggerWebhookGetsTriggerBody", func(t *testing.T) {
		snk2, url2 := newSink(t)
		srv.AddWebhook(url2, secret)
		srv.SetStatus(id, "solved")
		got := snk2.got()
		if len(got) != 1 {
			t.Fatalf("%d deliveries", len(got))
		}
		want := fmt.Sprintf(`{"ticket_id":"%d","external_id":"conv_42","status":"Solved","updated_at":"%s","comment_id":"%d","comment_public":"true","comment_author_id":"%d"}`,
			id, clk.Now().Format(time.RFC3339), cid, srv.AgentID())
		if string(got[0].body) != want {
			t.Errorf("body\n got %s\nwant %s", got[0].body, want)
		}
	})
	t.Run("InactiveWebhookIsNotCalled", func(t *testing.T) {
		srv.SetWebhookStatus(hook, "inactive")
		before := len(snk.got())
		srv.AgentComment(id, "x", true)
		if len(snk.got()) != before {
			t.Error("inactive webhook was called")
		}
		r := call(t, srv, "PATCH", "/api/v2/webhooks/"+hook, map[string]any{"webhook": map[string]any{"status": "active"}})
		wantStatus(t, r, http.StatusNoContent)
		if w, _ := srv.Webhook(hook); w.Status != "active" {
			t.Errorf("status %q", w.Status)
		}
	})
	t.Run("SigningSecretEndpoint", func(t *testing.T) {
		r := call(t, srv, "GET", "/api/v2/webhooks/"+hook+"/signing_secret", nil)
		wantStatus(t, r, http.StatusOK)
		if string(r.body) != `{"signing_secret":{"algorithm":"SHA256","secret":"s3cret"}}` {
			t.Errorf("body %s", r.body)
		}
	})
}

func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header map[string]string
		want   int // attempts
	}{
		{"ConflictRetried3Times", http.StatusConflict, nil, 4},
		{"ServerErrorNotRetried", http.StatusInternalServerError, nil, 1},
		{"TooManyWithShortRetryAfterRetried", http.StatusTooManyRequests, map[string]string{"Retry-After": "1"}, 4},
		{"TooManyWithLongRetryAfterNotRetried", http.StatusTooManyRequests, map[string]string{"Retry-After": "60"}, 1},
		{"UnavailableWithoutRetryAfterNotRetried", http.StatusServiceUnavailable, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := zendesktest.NewServer(t, zendesktest.Config{WebhookMaxRetryWait: time.Millisecond})
			snk, url := newSink(t)
			snk.setAnswer(func(int) (int, map[string]string) { return tt.status, tt.header })
			hook := srv.AddWebhook(url, "k", zendesktest.EventCommentAdded)
			srv.AgentComment(createTicket(t, srv, "c", "x"), "hi", true)
			if n := len(snk.got()); n != tt.want {
				t.Errorf("%d attempts, want %d", n, tt.want)
			}
			invs := srv.Invocations(hook)
			if len(invs) != 1 || invs[0].Status != "failed" || invs[0].StatusCode != tt.status || len(srv.Attempts(hook, invs[0].ID)) != tt.want {
				t.Errorf("invocations %+v", invs)
			}
			ids := map[string]bool{}
			for _, r := range snk.got() {
				ids[r.header.Get("X-Zendesk-Webhook-Invocation-Id")] = true
			}
			if len(ids) != 1 {
				t.Errorf("retries used %d invocation ids, want 1", len(ids))
			}
		})
	}
	t.Run("TimeoutRetried5Times", func(t *testing.T) {
		srv := zendesktest.NewServer(t, zendesktest.Config{WebhookTimeout: 20 * time.Millisecond})
		block := make(chan struct{})
		var calls int
		var mu = make(chan struct{}, 1)
		mu <- struct{}{}
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-mu
			calls++
			mu <- struct{}{}
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}))
		defer hs.Close()
		defer close(block)
		hook := srv.AddWebhook(hs.URL, "k", zendesktest.EventCommentAdded)
		srv.AgentComment(createTicket(t, srv, "c", "x"), "hi", true)
		<-mu
		if calls != 6 {
			t.Errorf("%d calls, want 6", calls)
		}
		mu <- struct{}{}
		if invs := srv.Invocations(hook); len(invs) != 1 || invs[0].Status != "timeout" {
			t.Errorf("invocations %+v", invs)
		}
	})
}

func TestCircuitBreaker(t *testing.T) {
	clk := newClock()
	srv := zendesktest.NewServer(t, zendesktest.Config{Now: clk.Now, CircuitMinRequests: 4, CircuitPause: 5 * time.Second})
	snk, url := newSink(t)
	snk.setAnswer(always(http.StatusInternalServerError))
	hook := srv.AddWebhook(url, "k", zendesktest.EventCommentAdded)
	id := createTicket(t, srv, "c", "x")
	for i := range 4 {
		srv.AgentComment(id, fmt.Sprint("fail ", i), true)
	}
	if !srv.CircuitOpen(hook) {
		t.Fatal("breaker not tripped after 4 of 4 failures")
	}
	srv.AgentComment(id, "dropped", true)
	if n := len(snk.got()); n != 4 {
		t.Errorf("%d deliveries, want 4: circuit-broken events are not delivered", n)
	}
	var broken []zendesk.Invocation
	for _, inv := range srv.Invocations(hook) {
		if inv.Status == "circuit broken" {
			broken = append(broken, inv)
		}
	}
	if len(broken) != 1 {
		t.Fatalf("circuit broken invocations = %+v", broken)
	}
	if at := srv.Attempts(hook, broken[0].ID); len(at) != 1 || !strings.Contains(at[0].Request.Payload, `"body":"dropped"`) {
		t.Errorf("broken invocation keeps no payload: %+v", at)
	}

	t.Run("ProbeAfterPauseCloses", func(t *testing.T) {
		clk.Advance(5 * time.Second)
		snk.setAnswer(always(http.StatusOK))
		srv.AgentComment(id, "probe", true)
		if srv.CircuitOpen(hook) {
			t.Error("breaker still open after a successful probe")
		}
		srv.AgentComment(id, "after", true)
		if n := len(snk.got()); n != 6 {
			t.Errorf("%d deliveries, want 6", n)
		}
	})
}

func TestDropWebhooks(t *testing.T) {
	srv := zendesktest.NewServer(t)
	snk, url := newSink(t)
	hook := srv.AddWebhook(url, "k", zendesktest.EventCommentAdded)
	srv.DropWebhooks(true)
	srv.AgentComment(createTicket(t, srv, "c", "x"), "lost", true)
	srv.DropWebhooks(false)
	if len(snk.got()) != 0 {
		t.Error("dropped event was sent")
	}
	if invs := srv.Invocations(hook); len(invs) != 1 || invs[0].Status != "failed" {
		t.Errorf("invocations %+v", invs)
	}
}

func TestInvocationsPaging(t *testing.T) {
	clk := newClock()
	srv := zendesktest.NewServer(t, zendesktest.Config{Now: clk.Now})
	snk, url := newSink(t)
	snk.setAnswer(func(n int) (int, map[string]string) {
		if n%2 == 0 {
			return http.StatusBadRequest, nil
		}
		return http.StatusOK, nil
	})
	hook := srv.AddWebhook(url, "k", zendesktest.EventCommentAdded)
	id := createTicket(t, srv, "c", "x")
	for i := range 5 {
		clk.Advance(time.Minute)
		srv.AgentComment(id, fmt.Sprint(i), true)
	}
	type page struct {
		Invocations []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"invocations"`
		Meta struct {
			HasMore     bool   `json:"has_more"`
			AfterCursor string `json:"after_cursor"`
		} `json:"meta"`
		Links struct {
			Next *string `json:"next"`
		} `json:"links"`
	}
	var ids []string
	next := "/api/v2/webhooks/" + hook + "/invocations?page[size]=2&sort=latest_completed_at"
	pages := 0
	for next != "" {
		var p page
		r := call(t, srv, "GET", next, nil)
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &p)
		pages++
		for _, inv := range p.Invocations {
			ids = append(ids, inv.ID)
		}
		next = ""
		if p.Meta.HasMore {
			next = strings.TrimPrefix(*p.Links.Next, srv.URL())
		}
	}
	all := srv.Invocations(hook)
	if pages != 3 || len(ids) != 5 || ids[0] != all[0].ID || ids[4] != all[4].ID {
		t.Errorf("pages %d ids %v", pages, ids)
	}
	t.Run("FilterByStatusAndTime", func(t *testing.T) {
		var p page
		call(t, srv, "GET", "/api/v2/webhooks/"+hook+"/invocations?filter[status]=failed", nil).decode(t, &p)
		if len(p.Invocations) != 2 {
			t.Errorf("failed = %+v", p.Invocations)
		}
		from := clk.Now().Add(-90 * time.Second).Format(time.RFC3339)
		call(t, srv, "GET", "/api/v2/webhooks/"+hook+"/invocations?filter[from_ts]="+from, nil).decode(t, &p)
		if len(p.Invocations) != 2 {
			t.Errorf("since %s = %+v", from, p.Invocations)
		}
	})
	t.Run("OlderThan7DaysAreGone", func(t *testing.T) {
		clk.Advance(8 * 24 * time.Hour)
		var p page
		call(t, srv, "GET", "/api/v2/webhooks/"+hook+"/invocations", nil).decode(t, &p)
		if len(p.Invocations) != 0 {
			t.Errorf("got %d", len(p.Invocations))
		}
	})
}

func TestTargetDeactivatedAfter21ConsecutiveFailures(t *testing.T) {
	srv := zendesktest.NewServer(t)
	snk, url := newSink(t)
	snk.setAnswer(always(http.StatusInternalServerError))
	tid := srv.AddTarget(url, "zd", "pw")
	id := createTicket(t, srv, "c", "x")
	for range 20 {
		srv.AgentComment(id, "x", true)
	}
	// A success in between resets the count.
	snk.setAnswer(always(http.StatusOK))
	srv.AgentComment(id, "ok", true)
	if n := srv.TargetConsecutiveFailures(tid); n != 0 {
		t.Fatalf("consecutive failures = %d after a success", n)
	}
	snk.setAnswer(always(http.StatusInternalServerError))
	for i := range 21 {
		if tg, _ := srv.Target(tid); !tg.Active {
			t.Fatalf("deactivated after %d failures", i)
		}
		srv.AgentComment(id, "x", true)
	}
	if tg, _ := srv.Target(tid); tg.Active {
		t.Fatal("still active after 21 consecutive failures")
	}
	calls := len(snk.got())
	srv.AgentComment(id, "x", true)
	if len(snk.got()) != calls {
		t.Error("inactive target was called")
	}
	if u, p, ok := (&http.Request{Header: snk.got()[0].header}).BasicAuth(); !ok || u != "zd" || p != "pw" {
		t.Errorf("basic auth %q %q %v", u, p, ok)
	}
	var failures struct {
		TargetFailures []struct {
			Count int `json:"consecutive_failure_count"`
		} `json:"target_failures"`
	}
	call(t, srv, "GET", "/api/v2/target_failures", nil).decode(t, &failures)
	if len(failures.TargetFailures) == 0 || failures.TargetFailures[0].Count != 21 {
		t.Errorf("failures %+v", failures)
	}
	r := call(t, srv, "PUT", fmt.Sprintf("/api/v2/targets/%d.json", tid), map[string]any{"target": map[string]any{"active": true}})
	wantStatus(t, r, http.StatusOK)
	var shown struct {
		Target struct {
			Active bool `json:"active"`
		} `json:"target"`
	}
	call(t, srv, "GET", fmt.Sprintf("/api/v2/targets/%d", tid), nil).decode(t, &shown)
	if !shown.Target.Active {
		t.Error("not re-activated")
	}
}

func TestNotifyAPIWrites(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{NotifyAPIWrites: true})
	snk, url := newSink(t)
	srv.AddWebhook(url, "k", zendesktest.EventCommentAdded)
	id := createTicket(t, srv, "c", "x")
	wantStatus(t, addComment(t, srv, id, "y"), http.StatusOK)
	srv.WaitDeliveries()
	got := snk.got()
	if len(got) != 2 { // order is not guaranteed, as in Zendesk
		t.Fatalf("got %d deliveries, want 2", len(got))
	}
	// The description is the requester's; a comment sent without author_id
	// is the API user's, a staff member: the "echo" deskrelay must filter.
	want := map[string]string{`"body":"x"`: `"is_staff":false`, `"body":"y"`: `"is_staff":true`}
	for _, r := range got {
		for body, staff := range want {
			if strings.Contains(string(r.body), body) && !strings.Contains(string(r.body), staff) {
				t.Errorf("want %s: %s", staff, r.body)
			}
		}
	}
}

func TestDuplicateDeliveries(t *testing.T) {
	srv := zendesktest.NewServer(t)
	snk, url := newSink(t)
	hook := srv.AddWebhook(url, "k", zendesktest.EventCommentAdded)
	id := createTicket(t, srv, "c", "x")
	srv.DuplicateDeliveries(1)
	srv.AgentComment(id, "twice", true)
	srv.AgentComment(id, "once", true)
	got := snk.got()
	if len(got) != 3 || string(got[0].body) != string(got[1].body) ||
		got[0].header.Get("X-Zendesk-Webhook-Invocation-Id") == got[1].header.Get("X-Zendesk-Webhook-Invocation-Id") {
		t.Errorf("%d deliveries", len(got))
	}
	if n := len(srv.Invocations(hook)); n != 3 {
		t.Errorf("%d invocations", n)
	}
}
