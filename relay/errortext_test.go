package relay

import (
	"errors"
	"strings"
	"testing"

	"github.com/deskrelay/deskrelay/zendesk"
)

// Whatever an error says, what is stored as last_error never holds the
// Zendesk credentials (the second line behind zendesk's own scrubbing).
func TestErrorTextScrubsCredentials(t *testing.T) {
	const token = "api-TOKEN-0123456789"
	zd, err := zendesk.New(zendesk.Config{BaseURL: "https://example.zendesk.com", Email: "ann@example.com", APIToken: token})
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{zd: zd}
	got := r.errorText(errors.New("sink said: " + strings.Repeat("x", 990) + " " + token))
	if strings.Contains(got, token[:6]) {
		t.Fatalf("errorText kept (a piece of) the token: %q", got)
	}
}
