package reconcile

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		in      string
		want    time.Time
		wantErr string // substring; "" means no error
	}{
		{name: "RFC3339UTC", in: "2026-11-24T10:00:00Z", want: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)},
		{name: "RFC3339Offset", in: "2026-11-24T10:00:00+02:00", want: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)},
		{name: "RFC3339Nano", in: "2026-11-24T10:00:00.5Z", want: time.Date(2026, 11, 24, 10, 0, 0, 5e8, time.UTC)},
		{name: "DateIsMidnightUTC", in: "2026-11-24", want: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)},
		{name: "Hours", in: "6h", want: now.Add(-6 * time.Hour)},
		{name: "Minutes", in: "90m", want: now.Add(-90 * time.Minute)},
		{name: "Days", in: "2d", want: now.Add(-48 * time.Hour)},
		{name: "DaysAndHours", in: "1d12h", want: now.Add(-36 * time.Hour)},
		{name: "Spaces", in: "  45s ", want: now.Add(-45 * time.Second)},
		{name: "EmptyIsAnError", in: "", wantErr: "empty"},
		{name: "GarbageIsAnError", in: "yesterday", wantErr: "not an RFC 3339 time or a duration ago"},
		{name: "NegativeIsAnError", in: "-6h", wantErr: "positive"},
		{name: "ZeroIsAnError", in: "0s", wantErr: "more than zero"},
		{name: "TimeWithoutZoneIsAnError", in: "2026-11-24T10:00:00", wantErr: "with a zone"},
		{name: "BadDaysIsAnError", in: "xd", wantErr: "not an RFC 3339 time"},
		{name: "UnitlessIsAnError", in: "6", wantErr: "not an RFC 3339 time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSince(tt.in, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSince(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("ParseSince(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestWindowCheck(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	lag := 90 * time.Second
	latest := now.Add(-lag)
	tests := []struct {
		name      string
		w         Window
		wantUntil time.Time
		wantErr   string
	}{
		{name: "UntilDefaultsToNowMinusLag", w: Window{Since: now.Add(-time.Hour)}, wantUntil: latest},
		{name: "UntilKept", w: Window{Since: now.Add(-time.Hour), Until: now.Add(-30 * time.Minute)}, wantUntil: now.Add(-30 * time.Minute)},
		{name: "UntilInTheFutureIsClamped", w: Window{Since: now.Add(-time.Hour), Until: now.Add(time.Hour)}, wantUntil: latest},
		{name: "MissingSinceIsAnError", w: Window{}, wantErr: "--since is required"},
		{name: "SinceInTheFutureIsAnError", w: Window{Since: now.Add(time.Minute)}, wantErr: "in the future"},
		{name: "UntilBeforeSinceIsAnError", w: Window{Since: now.Add(-time.Hour), Until: now.Add(-2 * time.Hour)}, wantErr: "is before --since"},
		{name: "TooRecentSinceIsAnError", w: Window{Since: now.Add(-30 * time.Second)}, wantErr: "the window is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.w.check(now, lag)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadWindow) {
					t.Fatalf("check = %v; want ErrBadWindow containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !got.Until.Equal(tt.wantUntil) {
				t.Fatalf("check = %+v, %v; want until %v", got, err, tt.wantUntil)
			}
		})
	}
}

func TestSameEndpoint(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{name: "Equal", a: "https://relay.example.com/v1/zendesk/webhook", b: "https://relay.example.com/v1/zendesk/webhook", want: true},
		{name: "HostCaseAndTrailingSlash", a: "https://Relay.Example.com/v1/zendesk/webhook/", b: "https://relay.example.com/v1/zendesk/webhook", want: true},
		{name: "DefaultPort", a: "https://relay.example.com:443/v1/zendesk/webhook", b: "https://relay.example.com/v1/zendesk/webhook", want: true},
		{name: "OtherHost", a: "https://evil.example.com/v1/zendesk/webhook", b: "https://relay.example.com/v1/zendesk/webhook"},
		{name: "OtherPath", a: "https://relay.example.com/hooks", b: "https://relay.example.com/v1/zendesk/webhook"},
		{name: "OtherScheme", a: "http://relay.example.com/v1/zendesk/webhook", b: "https://relay.example.com/v1/zendesk/webhook"},
		{name: "OtherPort", a: "https://relay.example.com:8443/v1/zendesk/webhook", b: "https://relay.example.com/v1/zendesk/webhook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameEndpoint(tt.a, tt.b); got != tt.want {
				t.Fatalf("sameEndpoint(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "Plain", in: "https://relay.example.com/v1/zendesk/target", want: "https://relay.example.com/v1/zendesk/target"},
		{name: "Credentials", in: "https://admin:s3cret@relay.example.com/hook", want: "https://redacted@relay.example.com/hook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redactURL(tt.in); got != tt.want {
				t.Fatalf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLatestFailures(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	fs := []zendesk.TargetFailure{
		{TargetName: "deskrelay", ConsecutiveFailureCount: 21, CreatedAt: now.Add(-2 * time.Hour)},
		{TargetName: "deskrelay", ConsecutiveFailureCount: 11, CreatedAt: now.Add(-time.Minute)},
		{TargetName: "deskrelay", ConsecutiveFailureCount: 10, CreatedAt: now.Add(-2 * time.Minute)},
		{TargetName: "other", ConsecutiveFailureCount: 20, CreatedAt: now},
	}
	tests := []struct {
		name  string
		title string
		since time.Time
		want  int
	}{
		{name: "LatestRecentOfThisTarget", title: "deskrelay", want: 11},
		{name: "NothingSinceReenable", title: "deskrelay", since: now.Add(-30 * time.Second), want: 0},
		{name: "OtherTarget", title: "other", want: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := latestFailures(fs, tt.title, now, tt.since); got != tt.want {
				t.Fatalf("latestFailures = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestStartTimeOf(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
	}{
		{name: "Present", in: "https://x.zendesk.com/api/v2/incremental/ticket_events.json?include=comment_events&start_time=1700000000", want: 1700000000},
		{name: "First", in: "/api/v2/incremental/ticket_events?start_time=42&include=comment_events", want: 42},
		{name: "Absent", in: "/api/v2/incremental/ticket_events?include=comment_events", want: 0},
		{name: "NoQuery", in: "/api/v2/incremental/ticket_events", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := startTimeOf(tt.in); got != tt.want {
				t.Fatalf("startTimeOf(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"6h", "2d", "1d12h", "90m", "2026-11-24T10:00:00Z", "2026-11-24", "-1h", "0s", "d", "9999999d", "1e9h"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSince(s, now)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseSince(%q) = %v: not UTC", s, got)
		}
		if _, rfcErr := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); rfcErr != nil && !looksLikeTime(strings.TrimSpace(s)) && !got.Before(now) {
			t.Fatalf("ParseSince(%q) = %v: a duration ago must be in the past", s, got)
		}
	})
}
