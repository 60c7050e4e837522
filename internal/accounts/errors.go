package accounts

import (
	"strconv"
	"strings"
)

// Problem is one thing wrong with an accounts file.
type Problem struct {
	// Account is the account's name, "" when the problem is the file's or
	// the account's name is missing or bad.
	Account string
	// Index is the account's position in the list, from 1; 0 for a problem
	// of the whole file.
	Index int
	// Line is the account's line in the file, shown when the name alone does
	// not tell the account (a missing, bad or repeated name).
	Line int
	// Field is the YAML field at fault ("oauth_client_secret_file"), or "".
	Field string
	// Message says what is wrong, never showing a secret.
	Message string

	showLine bool // the name alone is ambiguous (a repeated name)
}

// String is the problem without the file: `account "acme": field: message`.
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.Account != "":
		b.WriteString("account " + strconv.Quote(p.Account))
		if p.showLine {
			b.WriteString(" (line " + strconv.Itoa(p.Line) + ")")
		}
		b.WriteString(": ")
	case p.Index > 0:
		b.WriteString("account #" + strconv.Itoa(p.Index))
		if p.Line > 0 {
			b.WriteString(" (line " + strconv.Itoa(p.Line) + ")")
		}
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is every problem of an accounts file.
type Error struct {
	// Path is the accounts file as given to Load.
	Path string
	// Problems are in the file's order.
	Problems []Problem
}

// Lines returns one line per problem, each naming the file:
// `accounts file /etc/deskrelay/accounts.yaml: account "acme": oauth_client_secret_file: …`.
func (e *Error) Lines() []string {
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = "accounts file " + e.Path + ": " + p.String()
	}
	return out
}

// Error is the lines, joined by newlines.
func (e *Error) Error() string { return strings.Join(e.Lines(), "\n") }
