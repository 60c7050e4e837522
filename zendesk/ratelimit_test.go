package zendesk

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		in     string
		want   time.Duration
		wantOK bool
	}{
		{name: "SecondsAreUsed", in: "7", want: 7 * time.Second, wantOK: true},
		{name: "SpacesAreTrimmed", in: " 120 ", want: 2 * time.Minute, wantOK: true},
		{name: "FractionIsKept", in: "1.2", want: 1200 * time.Millisecond, wantOK: true},
		{name: "ZeroIsZero", in: "0", want: 0, wantOK: true},
		{name: "HTTPDateIsRelativeToNow", in: "Tue, 24 Nov 2026 10:00:30 GMT", want: 30 * time.Second, wantOK: true},
		{name: "PastHTTPDateIsZero", in: "Tue, 24 Nov 2026 09:00:00 GMT", want: 0, wantOK: true},
		{name: "FarHTTPDateIsCapped", in: "Fri, 24 Nov 2028 10:00:00 GMT", want: MaxRetryAfter, wantOK: true},
		{name: "MissingIsUnknown", in: "", wantOK: false},
		{name: "GarbageIsUnknown", in: "soon", wantOK: false},
		{name: "HalfNumberIsUnknown", in: "12s", wantOK: false},
		{name: "ExponentIsUnknown", in: "1e3", wantOK: false},
		{name: "NegativeIsZero", in: "-5", want: 0, wantOK: true},
		{name: "HugeIsCapped", in: "999999999999999999999999", want: MaxRetryAfter, wantOK: true},
		{name: "OverCapIsCapped", in: "7200", want: MaxRetryAfter, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseRetryAfter(tt.in, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		name   string
		header map[string][]string
		want   RateLimit
	}{
		{name: "NoHeadersIsUnknown", header: nil, want: RateLimit{}},
		{name: "XRateLimitIsRead",
			header: map[string][]string{"X-Rate-Limit": {"700"}, "X-Rate-Limit-Remaining": {"699"}},
			want:   RateLimit{Limit: 700, Remaining: 699, Known: true}},
		{name: "RatelimitBeatsXRateLimit",
			header: map[string][]string{"X-Rate-Limit": {"700"}, "X-Rate-Limit-Remaining": {"699"},
				"ratelimit-limit": {"100"}, "ratelimit-remaining": {"42"}, "ratelimit-reset": {"17"}},
			want: RateLimit{Limit: 100, Remaining: 42, Reset: 17 * time.Second, Known: true}},
		{name: "EndpointHeaderBeatsAll",
			header: map[string][]string{"X-Rate-Limit": {"700"}, "X-Rate-Limit-Remaining": {"699"},
				"ratelimit-limit": {"100"}, "ratelimit-remaining": {"42"},
				"Zendesk-RateLimit-Tickets-Update": {"total=100; remaining=3; resets=40"}},
			want: RateLimit{Limit: 100, Remaining: 3, Reset: 40 * time.Second, Known: true}},
		{name: "MostRestrictiveEndpointWins",
			header: map[string][]string{
				"Zendesk-RateLimit-Tickets-Index":  {"total=700; remaining=600; resets=10"},
				"Zendesk-RateLimit-Incremental-Ex": {"total=10;remaining=1;resets=55"}},
			want: RateLimit{Limit: 10, Remaining: 1, Reset: 55 * time.Second, Known: true}},
		{name: "GarbageIsIgnored",
			header: map[string][]string{"X-Rate-Limit": {"lots"}, "X-Rate-Limit-Remaining": {"-1"},
				"Zendesk-RateLimit-X": {"nonsense"}},
			want: RateLimit{}},
		{name: "StructuredRatelimitTakesFirstNumber",
			header: map[string][]string{"ratelimit-limit": {"400, 400;w=60"}, "ratelimit-remaining": {"12"}},
			want:   RateLimit{Limit: 400, Remaining: 12, Known: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, vs := range tt.header {
				for _, v := range vs {
					h.Add(k, v)
				}
			}
			if got := ParseRateLimit(h); got != tt.want {
				t.Errorf("ParseRateLimit = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRateLimitOnEveryResponse(t *testing.T) {
	srv, _ := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		w.Header().Set("X-Rate-Limit", "200")
		w.Header().Set("X-Rate-Limit-Remaining", "5")
		w.Header().Set("X-Zendesk-Request-Id", "zd-1")
		if r.URL.Path == "/api/v2/tickets/2" {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		writeJSON(w, 200, map[string]any{"ticket": map[string]any{"id": 1}})
	})
	var got []Response
	c := mustClient(t, srv.URL, func(c *Config) { c.OnResponse = func(r Response) { got = append(got, r) } })
	if _, err := c.GetTicket(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	_, err := c.GetTicket(t.Context(), 2)
	ze := AsError(err)
	want := RateLimit{Limit: 200, Remaining: 5, Known: true}
	if ze == nil || ze.RateLimit != want || ze.RetryAfter != 3*time.Second || ze.RequestID != "zd-1" {
		t.Fatalf("err = %+v, want rate limited with %+v", ze, want)
	}
	if len(got) != 2 {
		t.Fatalf("OnResponse called %d times, want 2", len(got))
	}
	for i, wantStatus := range []int{200, 429} {
		if got[i].StatusCode != wantStatus || got[i].RateLimit != want || got[i].Op != "get ticket" || got[i].RequestID != "zd-1" || got[i].Duration <= 0 {
			t.Errorf("OnResponse[%d] = %+v, want status %d with %+v", i, got[i], wantStatus, want)
		}
	}
}
