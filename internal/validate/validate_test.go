package validate

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestFieldsFindsEveryFieldError(t *testing.T) {
	err := fmt.Errorf("relay: %w", errors.Join(
		Errorf("relay", "OrderGapTimeout", "must be positive"),
		errors.New("not a field"),
		fmt.Errorf("wrapped: %w", Errorf("relay", "RateLimit", "at least %d", 1)),
	))
	got := Fields(err)
	if len(got) != 2 || got[0].Field != "OrderGapTimeout" || got[1].Field != "RateLimit" || got[1].Problem != "at least 1" {
		t.Fatalf("Fields = %v", got)
	}
	if want := "relay: OrderGapTimeout: must be positive"; got[0].Error() != want {
		t.Fatalf("Error() = %q, want %q", got[0].Error(), want)
	}
}

func TestHTTPURL(t *testing.T) {
	tests := []struct {
		name, raw string
		wantOK    bool
	}{
		{name: "HTTPS", raw: "https://sink.example.com/hook", wantOK: true},
		{name: "HTTP", raw: "http://127.0.0.1:9000", wantOK: true},
		{name: "NoScheme", raw: "sink.example.com"},
		{name: "FTP", raw: "ftp://x"},
		{name: "Credentials", raw: "https://u:p@x.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HTTPURL(tt.raw); (got == "") != tt.wantOK {
				t.Fatalf("HTTPURL(%q) = %q, want ok=%v", tt.raw, got, tt.wantOK)
			}
		})
	}
}

func TestSubdomain(t *testing.T) {
	for s, want := range map[string]bool{"acme": true, "acme-2": true, "acme.zendesk.com": false, "-x": false, "": false, "ACME": false} {
		if got := Subdomain(s) == ""; got != want {
			t.Errorf("Subdomain(%q) ok = %v, want %v", s, got, want)
		}
	}
}

func TestAccountName(t *testing.T) {
	for _, ok := range []string{"default", "acme", "a", "0-x", "a" + strings.Repeat("b", 62)} {
		if msg := AccountName(ok); msg != "" {
			t.Errorf("AccountName(%q) = %q, want ok", ok, msg)
		}
	}
	for _, bad := range []string{"", "-a", "Acme", "a_b", "a{b}", "a:b", "a" + strings.Repeat("b", 63), "é"} {
		if AccountName(bad) == "" {
			t.Errorf("AccountName(%q) accepted", bad)
		}
	}
}
