package zendesk

import (
	"net/http"
	"strings"
)

// Family names a rate-limit budget: the account's per-minute budget, or one
// of the endpoint budgets Zendesk keeps apart from it. A limiter throttles
// each family on its own; see docs/zendesk.md ("Rate-limit families").
type Family string

// The families deskrelay's requests fall into.
const (
	// FamilyAccount is the account's per-minute budget (200 to 2,500 by
	// plan); every request not listed in families spends it.
	FamilyAccount Family = "account"
	// FamilyTicketsUpdate is Update Ticket (PUT /api/v2/tickets/{id}):
	// 100 requests a minute per account, on top of the account budget.
	FamilyTicketsUpdate Family = "tickets-update"
	// FamilyTicketsIndex is List Tickets (GET /api/v2/tickets), which has
	// its own page-volume limit on top of the account budget.
	FamilyTicketsIndex Family = "tickets-index"
	// FamilyIncrementalExports is /api/v2/incremental/…: 10 requests a
	// minute (30 with High Volume), on top of the account budget.
	FamilyIncrementalExports Family = "incremental-exports"
	// FamilySearch is /api/v2/search…, limited on its own, on top of the
	// account budget.
	FamilySearch Family = "search"
	// FamilyUsersCreateOrUpdate is POST /api/v2/users/create_or_update
	// (5 a minute per user, 1 a second per account), on top of the account.
	FamilyUsersCreateOrUpdate Family = "users-create-or-update"
	// FamilyTicketsUpdateMany is Update Many Tickets (PUT
	// /api/v2/tickets/update_many). It has no per-minute limit of its own
	// (none documented); it is a family so that a 429 of the job limit
	// (30 jobs queued or running per account) pauses batch updates alone.
	FamilyTicketsUpdateMany Family = "tickets-update-many"
	// FamilyJobStatuses is Show Job Status (GET /api/v2/job_statuses/{id}):
	// no documented limit of its own; a family so that polling jobs is
	// paused apart from everything else.
	FamilyJobStatuses Family = "job-statuses"
	// FamilyWebhooks is the Webhooks API (/api/v2/webhooks…), a separate
	// service whose X-Rate-Limit (100) is its own and not the account's.
	FamilyWebhooks Family = "webhooks"
)

// FamilyRule is one row of the families table.
type FamilyRule struct {
	// Method is the HTTP method the rule is for; "" matches every method.
	Method string
	// Pattern is a path below the base URL; "{id}" matches one segment of
	// digits and a trailing "/**" matches the path itself and anything
	// below it.
	Pattern string
	// Family is the budget requests matching the rule belong to.
	Family Family
	// SpendsAccount says whether such a request also spends the account's
	// per-minute budget.
	SpendsAccount bool
	// Headers are the <name>s of the Zendesk-RateLimit-<name> (or
	// Zendesk-Rate-Limit-<name>) headers that carry the family's own
	// figures. Empty for FamilyAccount, and for FamilyWebhooks, whose own
	// figures come in X-Rate-Limit.
	Headers []string
}

// families is the one table from request to rate-limit family; first match
// wins, and a request no rule matches is FamilyAccount.
var families = []FamilyRule{
	{Method: http.MethodPut, Pattern: "/api/v2/tickets/update_many", Family: FamilyTicketsUpdateMany, SpendsAccount: true},
	{Method: http.MethodGet, Pattern: "/api/v2/job_statuses/**", Family: FamilyJobStatuses, SpendsAccount: true},
	{Method: http.MethodPut, Pattern: "/api/v2/tickets/{id}", Family: FamilyTicketsUpdate, SpendsAccount: true, Headers: []string{"tickets-update"}},
	{Method: http.MethodGet, Pattern: "/api/v2/tickets", Family: FamilyTicketsIndex, SpendsAccount: true, Headers: []string{"tickets-index"}},
	{Pattern: "/api/v2/incremental/**", Family: FamilyIncrementalExports, SpendsAccount: true, Headers: []string{"incremental-exports"}},
	{Pattern: "/api/v2/search/**", Family: FamilySearch, SpendsAccount: true, Headers: []string{"search", "search-export"}},
	{Method: http.MethodPost, Pattern: "/api/v2/users/create_or_update", Family: FamilyUsersCreateOrUpdate, SpendsAccount: true, Headers: []string{"users-create-or-update"}},
	{Pattern: "/api/v2/webhooks/**", Family: FamilyWebhooks, SpendsAccount: false},
}

// accountRule is the rule of every request no row of families matches.
var accountRule = FamilyRule{Pattern: "/**", Family: FamilyAccount, SpendsAccount: true}

// Families returns the families table, for a limiter and for docs.
func Families() []FamilyRule {
	out := make([]FamilyRule, 0, len(families)+1)
	for _, r := range families {
		r.Headers = append([]string(nil), r.Headers...)
		out = append(out, r)
	}
	return append(out, accountRule)
}

// Classify returns the rule for a request: method and path below the base
// URL (a query and a .json suffix are ignored).
func Classify(method, path string) FamilyRule {
	path, _, _ = strings.Cut(path, "?")
	path = strings.TrimSuffix(strings.TrimRight(path, "/"), ".json")
	for _, r := range families {
		if (r.Method == "" || strings.EqualFold(r.Method, method)) && matchPattern(r.Pattern, path) {
			return r
		}
	}
	return accountRule
}

// SpendsAccount reports whether requests of family f also spend the
// account's budget. Unknown families do, to be safe.
func (f Family) SpendsAccount() bool {
	for _, r := range families {
		if r.Family == f {
			return r.SpendsAccount
		}
	}
	return true
}

func matchPattern(pattern, path string) bool {
	ps := strings.Split(strings.Trim(pattern, "/"), "/")
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, p := range ps {
		if p == "**" {
			return true
		}
		if i >= len(segs) {
			return false
		}
		switch {
		case p == "{id}":
			if !isDigits(segs[i]) {
				return false
			}
		case p != segs[i]:
			return false
		}
	}
	return len(ps) == len(segs)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
