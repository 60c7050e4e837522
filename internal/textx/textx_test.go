package textx_test

import (
	"testing"
	"unicode/utf8"

	"github.com/deskrelay/deskrelay/internal/textx"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"short", "abc", 3, "abc"},
		{"ascii", "abcdef", 3, "abc…"},
		{"before a two-byte character", "aé", 2, "a…"},
		{"inside a three-byte character", "ab€cd", 3, "ab…"},
		{"after a whole character", "ab€cd", 5, "ab€…"},
		{"inside a four-byte character", "x😀y", 3, "x…"},
		{"zero", "abc", 0, "…"},
		{"negative", "abc", -1, "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := textx.Truncate(tt.s, tt.n)
			if got != tt.want {
				t.Fatalf("Truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
		})
	}
}

func FuzzTruncate(f *testing.F) {
	f.Add("héllo wörld 😀", 5)
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := textx.Truncate(s, n)
		if len(s) <= n {
			if got != s {
				t.Fatalf("Truncate(%q, %d) = %q, want it unchanged", s, n, got)
			}
			return
		}
		if len(got) > max(n, 0)+len(textx.Ellipsis) {
			t.Fatalf("Truncate(%q, %d) = %q: too long", s, n, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Truncate(%q, %d) = %q: cut a character", s, n, got)
		}
	})
}
