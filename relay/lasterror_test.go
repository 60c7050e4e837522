package relay

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// The last error stored with a message is cut to 1000 bytes: never in the
// middle of a character (an agent's or Zendesk's text in any language).
func TestLastErrorKeepsCharactersWhole(t *testing.T) {
	s := "xx" + strings.Repeat("€", 400) // 2 + 1200 bytes: byte 1000 falls inside a €
	got := lastError(errors.New(s))
	if !utf8.ValidString(got) {
		t.Fatalf("lastError cut a character in two: ends %q", got[len(got)-4:])
	}
	if len(got) > 1000+len("…") {
		t.Fatalf("lastError kept %d bytes, want at most 1000 and a mark", len(got))
	}
}
