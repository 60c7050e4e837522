package textx

import "unicode/utf8"

// Ellipsis marks a text that Truncate shortened.
const Ellipsis = "…"

// Truncate returns s if it is at most n bytes long; otherwise its longest
// prefix of at most n bytes that ends on a character boundary, followed by
// Ellipsis (so the result may be up to len(Ellipsis) bytes longer than n).
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n = max(n, 0)
	// back off at most one partial character (invalid UTF-8 is cut as bytes)
	for i := n; i > 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + Ellipsis
		}
	}
	return s[:n] + Ellipsis
}
