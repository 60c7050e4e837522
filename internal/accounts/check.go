package accounts

import (
	"context"
	"errors"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/deskrelay/deskrelay/internal/validate"
	"github.com/deskrelay/deskrelay/internal/zdoauth"
	"github.com/deskrelay/deskrelay/zendesk"
)

// account reads and checks the list's index-th item (from 1), adding its
// problems to l; ok is false when it has any.
func (l *loader) account(index int, n *yaml.Node) (a Account, ok bool) {
	n = resolve(n)
	it := &item{index: index, line: n.Line, dir: l.dir, fields: map[string]*yaml.Node{}}
	if n.Kind != yaml.MappingNode {
		it.add("", "must be a mapping of fields (name: …, subdomain: …)")
		l.flush(it, "", false)
		return Account{}, false
	}
	it.collect(n, 0)
	a.Name = it.str("name")
	named := a.Name != ""
	switch {
	case !it.has("name"):
		it.add("name", "required")
	case named:
		if problem := validate.AccountName(a.Name); problem != "" {
			it.add("name", "%s", problem)
			named = false
		}
	}
	it.fill(&a)
	it.check(&a)
	if len(it.problems) == 0 {
		it.checkParts(a)
	}
	repeated := false
	if named {
		if line, dup := l.names[a.Name]; dup {
			it.add("name", "%q is already the name of the account at line %d", a.Name, line)
			repeated = true
		} else {
			l.names[a.Name] = it.line
		}
	}
	if !named {
		a.Name = ""
	}
	l.flush(it, a.Name, repeated)
	return a, len(it.problems) == 0
}

// flush adds it's problems to l, naming the account by name when it has a
// good one, else by its index and line.
func (l *loader) flush(it *item, name string, showLine bool) {
	for _, p := range it.problems {
		l.problems = append(l.problems, Problem{
			Account: name, Index: it.index, Line: it.line,
			Field: p.field, Message: p.msg, showLine: showLine,
		})
	}
}

// fill reads every field but the name into a.
func (it *item) fill(a *Account) {
	a.Subdomain = strings.ToLower(it.str("subdomain"))
	a.URL = strings.TrimRight(it.str("url"), "/")
	a.Email = it.str("email")
	a.APIToken = it.secret("api_token_file")
	a.OAuthToken = it.secret("oauth_token_file")
	a.OAuthClientID = it.str("oauth_client_id")
	a.OAuthClientSecret = it.secret("oauth_client_secret_file")
	a.OAuthRefreshToken = it.secret("oauth_refresh_token_file")
	a.RateLimit = it.rate("rate_limit", defaultRate)
	a.UpdateRateLimit = it.rate("update_rate_limit", defaultUpdateRate)
	a.WebhookID = it.str("webhook_id")
	a.WebhookSecret = it.secret("webhook_secret_file")
	a.TargetID = it.targetID()
	a.TargetUser = it.str("target_user")
	a.TargetPassword = it.secret("target_password_file")
}

// check applies the rules between fields: one Zendesk address, one way of
// authenticating with all its parts, a webhook or a target, the target's
// login complete. A field given with a bad value counts as given.
func (it *item) check(a *Account) {
	switch {
	case it.has("subdomain") && it.has("url"):
		it.add("url", "set either subdomain or url, not both")
	case !it.has("subdomain") && !it.has("url"):
		it.add("subdomain", "required (or url)")
	case a.Subdomain != "":
		if problem := validate.Subdomain(a.Subdomain); problem != "" {
			it.add("subdomain", "%s", problem)
		}
	case a.URL != "":
		if problem := validate.HTTPURL(a.URL); problem != "" {
			it.add("url", "%s", problem)
		}
	}
	it.checkAuth()
	if it.has("webhook_id") && it.has("target_id") {
		it.add("target_id", "set either webhook_id or target_id, not both")
	}
	it.together("target_user", "target_password_file")
}

// ways are the ways of authenticating, each with the fields it needs.
var ways = [][]string{
	{"oauth_client_id", "oauth_client_secret_file", "oauth_refresh_token_file"},
	{"oauth_token_file"},
	{"email", "api_token_file"},
}

// checkAuth requires exactly one way of authenticating, complete.
func (it *item) checkAuth() {
	var given []string
	for _, way := range ways {
		if !it.hasAny(way...) {
			continue
		}
		given = append(given, strings.Join(way, " + "))
		it.together(way...)
	}
	switch len(given) {
	case 0:
		it.add("", "no credentials: give oauth_client_id + oauth_client_secret_file + oauth_refresh_token_file, oauth_token_file, or email + api_token_file")
	case 1:
	default:
		it.add("", "more than one way to authenticate: %s; keep one", strings.Join(given, ", "))
	}
}

func (it *item) hasAny(fields ...string) bool {
	for _, f := range fields {
		if it.has(f) {
			return true
		}
	}
	return false
}

// together requires all of fields when any is given.
func (it *item) together(fields ...string) {
	if !it.hasAny(fields...) {
		return
	}
	for _, f := range fields {
		if !it.has(f) {
			it.add(f, "required with %s", strings.Join(without(fields, f), " and "))
		}
	}
}

func without(fields []string, drop string) []string {
	var out []string
	for _, f := range fields {
		if f != drop {
			out = append(out, f)
		}
	}
	return out
}

// partFields maps the fields of zendesk.Config and zdoauth.Config to the
// account's fields.
var partFields = map[string]string{
	"zendesk.BaseURL":      "url",
	"zendesk.Subdomain":    "subdomain",
	"zendesk.Email":        "email",
	"zendesk.APIToken":     "api_token_file",
	"zendesk.OAuthToken":   "oauth_token_file",
	"zdoauth.BaseURL":      "url",
	"zdoauth.Subdomain":    "subdomain",
	"zdoauth.ClientID":     "oauth_client_id",
	"zdoauth.ClientSecret": "oauth_client_secret_file",
	"zdoauth.RefreshToken": "oauth_refresh_token_file",
}

// checkParts applies the rules of zendesk.Config and zdoauth.Config (an
// email's form, a token without whitespace, a URL without /api/v2), so
// that an account is refused here and not when main builds its client.
func (it *item) checkParts(a Account) {
	zcfg := zendesk.Config{
		BaseURL: a.URL, Subdomain: a.Subdomain,
		Email: a.Email, APIToken: a.APIToken, OAuthToken: a.OAuthToken,
	}
	var errs []error
	if a.Auth() == AuthOAuthRefresh {
		zcfg.TokenSource = noTokens{}
		errs = append(errs, zdoauth.Config{
			BaseURL: a.URL, Subdomain: a.Subdomain, Account: a.Name,
			ClientID: a.OAuthClientID, ClientSecret: a.OAuthClientSecret, RefreshToken: a.OAuthRefreshToken,
		}.Validate())
	}
	_, err := zendesk.New(zcfg)
	errs = append([]error{err}, errs...)
	for _, fe := range validate.Fields(errors.Join(errs...)) {
		field, ok := partFields[fe.Pkg+"."+fe.Field]
		if !ok {
			field = fe.Pkg + "." + fe.Field
		}
		if !slices.Contains(it.problems, fieldProblem{field, fe.Problem}) { // zendesk and zdoauth share URL rules
			it.add(field, "%s", fe.Problem)
		}
	}
}

// noTokens stands for the OAuth token source when checking a zendesk.Config.
type noTokens struct{}

func (noTokens) Token(context.Context) (string, error) { return "", errors.New("not a client") }

func (noTokens) Refresh(context.Context, string) (string, error) {
	return "", errors.New("not a client")
}
