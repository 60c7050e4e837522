package zendesk

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name, method, path string
		want               Family
		wantSpends         bool
	}{
		{name: "ShowTicketIsAccount", method: "GET", path: "/api/v2/tickets/12", want: FamilyAccount, wantSpends: true},
		{name: "CreateTicketIsAccount", method: "POST", path: "/api/v2/tickets", want: FamilyAccount, wantSpends: true},
		{name: "UpdateTicketIsItsOwn", method: "PUT", path: "/api/v2/tickets/12", want: FamilyTicketsUpdate, wantSpends: true},
		{name: "UpdateTicketWithJSONSuffix", method: "PUT", path: "/api/v2/tickets/12.json", want: FamilyTicketsUpdate, wantSpends: true},
		{name: "UpdateManyIsNotUpdateTicket", method: "PUT", path: "/api/v2/tickets/update_many", want: FamilyTicketsUpdateMany, wantSpends: true},
		{name: "UpdateManyWithJSONSuffix", method: "PUT", path: "/api/v2/tickets/update_many.json?ids=1,2", want: FamilyTicketsUpdateMany, wantSpends: true},
		{name: "ShowJobStatus", method: "GET", path: "/api/v2/job_statuses/8b726e606741012ffc2d782bcb7848fe.json", want: FamilyJobStatuses, wantSpends: true},
		{name: "ListJobStatusesToo", method: "GET", path: "/api/v2/job_statuses", want: FamilyJobStatuses, wantSpends: true},
		{name: "ListTicketsIsTicketsIndex", method: "GET", path: "/api/v2/tickets?external_id=c", want: FamilyTicketsIndex, wantSpends: true},
		{name: "CommentsAreAccount", method: "GET", path: "/api/v2/tickets/12/comments", want: FamilyAccount, wantSpends: true},
		{name: "TicketEventsAreExports", method: "GET", path: "/api/v2/incremental/ticket_events?start_time=1", want: FamilyIncrementalExports, wantSpends: true},
		{name: "CursorExportIsExports", method: "GET", path: "/api/v2/incremental/tickets/cursor", want: FamilyIncrementalExports, wantSpends: true},
		{name: "SearchIsSearch", method: "GET", path: "/api/v2/search?query=x", want: FamilySearch, wantSpends: true},
		{name: "SearchExportIsSearch", method: "GET", path: "/api/v2/search/export", want: FamilySearch, wantSpends: true},
		{name: "CreateOrUpdateUser", method: "POST", path: "/api/v2/users/create_or_update", want: FamilyUsersCreateOrUpdate, wantSpends: true},
		{name: "WebhookIsWebhooksNotAccount", method: "GET", path: "/api/v2/webhooks/01H", want: FamilyWebhooks, wantSpends: false},
		{name: "PatchWebhook", method: "PATCH", path: "/api/v2/webhooks/01H", want: FamilyWebhooks, wantSpends: false},
		{name: "Invocations", method: "GET", path: "/api/v2/webhooks/01H/invocations/9/attempts", want: FamilyWebhooks, wantSpends: false},
		{name: "TargetsAreAccount", method: "PUT", path: "/api/v2/targets/3", want: FamilyAccount, wantSpends: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.method, tt.path)
			if got.Family != tt.want || got.SpendsAccount != tt.wantSpends || got.Family.SpendsAccount() != tt.wantSpends {
				t.Errorf("Classify(%s %s) = %s (spends account %v), want %s (%v)", tt.method, tt.path, got.Family, got.SpendsAccount, tt.want, tt.wantSpends)
			}
		})
	}
}

// headerSet reads testdata/ratelimit/<name>.txt: comment lines, then
// "METHOD PATH", then "key: value" lines.
func headerSet(tb testing.TB, name string) (method, path string, h http.Header) {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", "ratelimit", name+".txt"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h = http.Header{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case method == "":
			method, path, _ = strings.Cut(line, " ")
		default:
			k, v, _ := strings.Cut(line, ":")
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return method, path, h
}

func TestParseRateLimitsAttributesRecordedHeaders(t *testing.T) {
	tests := []struct {
		name        string
		wantFamily  Family
		wantOwn     RateLimit
		wantAccount RateLimit
	}{
		{name: "webhooks-show", wantFamily: FamilyWebhooks,
			wantOwn: RateLimit{Limit: 100, Remaining: 99, Known: true}, wantAccount: RateLimit{}},
		{name: "tickets-update-2023", wantFamily: FamilyTicketsUpdate,
			wantOwn:     RateLimit{Limit: 20, Remaining: 19, Reset: 59 * time.Second, Known: true},
			wantAccount: RateLimit{Limit: 700, Remaining: 698, Reset: 59 * time.Second, Known: true}},
		{name: "tickets-update-2024", wantFamily: FamilyTicketsUpdate,
			wantOwn:     RateLimit{Limit: 100, Remaining: 97, Reset: 41 * time.Second, Known: true},
			wantAccount: RateLimit{Limit: 700, Remaining: 650, Reset: 41 * time.Second, Known: true}},
		{name: "tickets-index-docs", wantFamily: FamilyTicketsIndex,
			wantOwn:     RateLimit{Limit: 100, Remaining: 99, Reset: 41 * time.Second, Known: true},
			wantAccount: RateLimit{Limit: 700, Remaining: 699, Reset: 41 * time.Second, Known: true}},
		{name: "incremental-exports", wantFamily: FamilyIncrementalExports,
			wantOwn:     RateLimit{Limit: 10, Remaining: 7, Reset: 43 * time.Second, Known: true},
			wantAccount: RateLimit{Limit: 400, Remaining: 380, Reset: 43 * time.Second, Known: true}},
		{name: "show-ticket", wantFamily: FamilyAccount,
			wantOwn:     RateLimit{Limit: 200, Remaining: 150, Known: true},
			wantAccount: RateLimit{Limit: 200, Remaining: 150, Known: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path, h := headerSet(t, tt.name)
			rule := Classify(method, path)
			own, account := ParseRateLimits(h, rule)
			if rule.Family != tt.wantFamily || own != tt.wantOwn || account != tt.wantAccount {
				t.Errorf("%s %s: family %s own %+v account %+v; want %s %+v %+v",
					method, path, rule.Family, own, account, tt.wantFamily, tt.wantOwn, tt.wantAccount)
			}
		})
	}
}

// TestParseRateLimitsReadsEveryForm covers each documented header form alone.
func TestParseRateLimitsReadsEveryForm(t *testing.T) {
	update := Classify("PUT", "/api/v2/tickets/1")
	account := Classify("GET", "/api/v2/tickets/1")
	tests := []struct {
		name    string
		rule    FamilyRule
		header  map[string]string
		wantOwn RateLimit
	}{
		{name: "XRateLimit", rule: account,
			header:  map[string]string{"x-rate-limit": "200", "x-rate-limit-remaining": "3", "x-rate-limit-reset": "9"},
			wantOwn: RateLimit{Limit: 200, Remaining: 3, Reset: 9 * time.Second, Known: true}},
		{name: "DashedRateLimit", rule: account,
			header:  map[string]string{"rate-limit": "200", "rate-limit-remaining": "4", "rate-limit-reset": "59"},
			wantOwn: RateLimit{Limit: 200, Remaining: 4, Reset: 59 * time.Second, Known: true}},
		{name: "DashedRateLimitLimit", rule: account,
			header:  map[string]string{"rate-limit-limit": "200", "rate-limit-remaining": "4"},
			wantOwn: RateLimit{Limit: 200, Remaining: 4, Known: true}},
		{name: "Ratelimit", rule: account,
			header:  map[string]string{"ratelimit-limit": "400", "ratelimit-remaining": "5", "ratelimit-reset": "12"},
			wantOwn: RateLimit{Limit: 400, Remaining: 5, Reset: 12 * time.Second, Known: true}},
		{name: "ZendeskRatelimit", rule: update,
			header:  map[string]string{"zendesk-ratelimit-tickets-update": "total=100; remaining=6; resets=30"},
			wantOwn: RateLimit{Limit: 100, Remaining: 6, Reset: 30 * time.Second, Known: true}},
		{name: "ZendeskDashedRateLimit", rule: update,
			header:  map[string]string{"zendesk-rate-limit-tickets-update": "total=20; remaining=19; resets=59"},
			wantOwn: RateLimit{Limit: 20, Remaining: 19, Reset: 59 * time.Second, Known: true}},
		{name: "EndpointResetFromWindowWhenMissing", rule: update,
			header:  map[string]string{"zendesk-rate-limit-tickets-update": "total=20; remaining=19", "rate-limit-reset": "59"},
			wantOwn: RateLimit{Limit: 20, Remaining: 19, Reset: 59 * time.Second, Known: true}},
		{name: "OtherEndpointIsNotTheFamilys", rule: update,
			header:  map[string]string{"zendesk-ratelimit-tickets-index": "total=100; remaining=0; resets=30", "x-rate-limit": "700"},
			wantOwn: RateLimit{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if own, _ := ParseRateLimits(h, tt.rule); own != tt.wantOwn {
				t.Errorf("own = %+v, want %+v", own, tt.wantOwn)
			}
		})
	}
}

// TestResponseCarriesFamily: OnResponse and *Error attribute the figures
// to the request's family, from recorded header sets.
func TestResponseCarriesFamily(t *testing.T) {
	sets := map[string]string{
		"/api/v2/webhooks/01GZ5V6Z1Q0C6V8N9J4ZK0T0RZ": "webhooks-show",
		"/api/v2/tickets/12345":                       "tickets-update-2023",
		"/api/v2/tickets/777":                         "tickets-update-429-2023",
	}
	srv, _ := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		_, _, h := headerSet(t, sets[r.URL.Path])
		for k, vs := range h {
			w.Header()[k] = vs
		}
		switch r.URL.Path {
		case "/api/v2/tickets/777":
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte("Rate limit for ticket updates exceeded, please wait before updating this ticket again"))
		case "/api/v2/tickets/12345":
			writeJSON(w, 200, map[string]any{"ticket": map[string]any{"id": 12345}})
		default:
			writeJSON(w, 200, map[string]any{"webhook": map[string]any{"id": "01GZ5V6Z1Q0C6V8N9J4ZK0T0RZ"}})
		}
	})
	var got []Response
	c := mustClient(t, srv.URL, func(c *Config) { c.OnResponse = func(r Response) { got = append(got, r) } })
	if _, err := c.GetWebhook(t.Context(), "01GZ5V6Z1Q0C6V8N9J4ZK0T0RZ"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddComment(t.Context(), 12345, CommentInput{Body: "hi", Public: true}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := c.AddComment(t.Context(), 777, CommentInput{Body: "hi", Public: true}, nil)
	ze := AsError(err)
	if ze == nil || ze.Kind != KindRateLimited || ze.Family != FamilyTicketsUpdate || ze.RetryAfter != 59*time.Second ||
		ze.RateLimit != (RateLimit{Limit: 20, Remaining: 0, Reset: 59 * time.Second, Known: true}) {
		t.Fatalf("err = %+v, want rate limited on tickets-update for 59s", ze)
	}
	want := []Response{
		{Family: FamilyWebhooks, SpendsAccount: false, RateLimit: RateLimit{Limit: 100, Remaining: 99, Known: true}},
		{Family: FamilyTicketsUpdate, SpendsAccount: true, RateLimit: RateLimit{Limit: 20, Remaining: 19, Reset: 59 * time.Second, Known: true},
			Account: RateLimit{Limit: 700, Remaining: 698, Reset: 59 * time.Second, Known: true}},
		{Family: FamilyTicketsUpdate, SpendsAccount: true, RateLimit: RateLimit{Limit: 20, Remaining: 0, Reset: 59 * time.Second, Known: true},
			Account: RateLimit{Limit: 700, Remaining: 640, Reset: 59 * time.Second, Known: true}},
	}
	if len(got) != len(want) {
		t.Fatalf("OnResponse called %d times, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Family != w.Family || g.SpendsAccount != w.SpendsAccount || g.RateLimit != w.RateLimit || g.Account != w.Account {
			t.Errorf("OnResponse[%d] = family %s spends %v own %+v account %+v; want %s %v %+v %+v",
				i, g.Family, g.SpendsAccount, g.RateLimit, g.Account, w.Family, w.SpendsAccount, w.RateLimit, w.Account)
		}
	}
}
