package validate

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
)

// FieldError is one invalid Config field.
type FieldError struct {
	// Pkg is the package whose Config holds the field, e.g. "relay".
	Pkg string
	// Field is the Config field's Go name, e.g. "OrderGapTimeout".
	Field string
	// Problem says what is wrong, never echoing a secret value.
	Problem string
}

func (e *FieldError) Error() string { return e.Pkg + ": " + e.Field + ": " + e.Problem }

// Errorf returns a *FieldError for pkg's field.
func Errorf(pkg, field, format string, args ...any) error {
	return &FieldError{Pkg: pkg, Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Fields returns every *FieldError in err's tree (errors.Join and %w
// wrapping included), in order.
func Fields(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if fe, ok := err.(*FieldError); ok { //nolint:errorlint // walking the tree by hand
			out = append(out, fe)
			return
		}
		switch u := err.(type) { //nolint:errorlint // walking the tree by hand
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		default:
			walk(errors.Unwrap(err))
		}
	}
	walk(err)
	return out
}

// HTTPURL checks an http(s) URL: a scheme, a host and no credentials. It
// returns "" when raw is fine and otherwise the problem, never echoing raw
// (a URL may carry a secret).
func HTTPURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
		return "must be an http:// or https:// URL"
	case u.Host == "":
		return "must be an http:// or https:// URL with a host"
	case u.User != nil:
		return "must not carry credentials in the URL"
	}
	return ""
}

var subdomainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Subdomain checks a Zendesk subdomain ("acme" for acme.zendesk.com): it
// returns "" when s is one and otherwise the problem.
func Subdomain(s string) string {
	if subdomainRE.MatchString(s) {
		return ""
	}
	return fmt.Sprintf("%q is not a subdomain: letters, digits and hyphens only, at most 63 (acme for acme.zendesk.com)", s)
}

var accountRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// AccountName checks the name of a Zendesk account as deskrelay knows it
// (the accounts file's name, a message's account, the {account} of a
// webhook path, a Redis key's hash tag, a metric label): it returns "" when
// s is one and otherwise the problem.
func AccountName(s string) string {
	if accountRE.MatchString(s) {
		return ""
	}
	return fmt.Sprintf("%q is not an account name: lower-case letters, digits and hyphens, starting with a letter or digit, at most 63", s)
}
