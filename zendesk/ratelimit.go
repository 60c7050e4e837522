package zendesk

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header forms Zendesk has used for rate-limit figures, least specific
// first (docs/zendesk.md, "Header forms"):
//
//	X-Rate-Limit, X-Rate-Limit-Remaining (, X-Rate-Limit-Reset)
//	Rate-Limit (or Rate-Limit-Limit), Rate-Limit-Remaining, Rate-Limit-Reset (2023)
//	Ratelimit-Limit, Ratelimit-Remaining, Ratelimit-Reset (2024)
//	Zendesk-Rate-Limit-<name>: total=…; remaining=…; resets=… (2023)
//	Zendesk-RateLimit-<name>: total=…; remaining=…; resets=… (2024)
//
// The first three carry one budget's figures (the account's, or the
// Webhooks API's own on its responses); the last two name an endpoint
// budget. Retry-After is read by ParseRetryAfter.
var genericForms = []struct{ limit, remaining, reset []string }{
	{[]string{"X-Rate-Limit"}, []string{"X-Rate-Limit-Remaining"}, []string{"X-Rate-Limit-Reset"}},
	{[]string{"Rate-Limit", "Rate-Limit-Limit"}, []string{"Rate-Limit-Remaining"}, []string{"Rate-Limit-Reset"}},
	{[]string{"Ratelimit-Limit"}, []string{"Ratelimit-Remaining"}, []string{"Ratelimit-Reset"}},
}

// endpointPrefixes are the canonical prefixes of endpoint budget headers.
var endpointPrefixes = []string{"Zendesk-Ratelimit-", "Zendesk-Rate-Limit-"}

// ParseRateLimits reads a response's rate-limit headers for a request of the
// given rule (see Classify) and attributes them: own is the family's budget,
// account the account's. For FamilyAccount both are the same figures. For a
// family that does not spend the account (the Webhooks API), every figure
// is the family's own and account is unknown. For other families, own comes
// from the family's Zendesk-RateLimit-<name> header (its reset, when the
// header has none, from the account's window reset), account from the
// generic headers. Unreadable values are ignored.
func ParseRateLimits(h http.Header, rule FamilyRule) (own, account RateLimit) {
	generic := parseGeneric(h)
	switch {
	case !rule.SpendsAccount:
		return generic, RateLimit{}
	case rule.Family == FamilyAccount:
		return generic, generic
	}
	own = parseEndpoints(h, func(name string) bool {
		for _, n := range rule.Headers {
			if strings.EqualFold(n, name) {
				return true
			}
		}
		return false
	})
	if own.Known && own.Reset == 0 {
		own.Reset = generic.Reset // one per-minute window for all
	}
	return own, generic
}

// ParseRateLimit reads rate-limit headers without knowing the request: the
// most specific figures win, that is the most restrictive endpoint header
// of any name, else the generic headers. Prefer ParseRateLimits, which
// attributes the figures to their family.
func ParseRateLimit(h http.Header) RateLimit {
	if ep := parseEndpoints(h, func(string) bool { return true }); ep.Known {
		return ep
	}
	return parseGeneric(h)
}

// parseGeneric reads the generic forms; a more specific form overwrites
// what a less specific one said.
func parseGeneric(h http.Header) RateLimit {
	var rl RateLimit
	for _, f := range genericForms {
		if n, ok := firstHeaderInt(h, f.limit); ok {
			rl.Limit, rl.Known = n, true
		}
		if n, ok := firstHeaderInt(h, f.remaining); ok {
			rl.Remaining, rl.Known = n, true
		}
		if n, ok := firstHeaderInt(h, f.reset); ok {
			rl.Reset, rl.Known = time.Duration(n)*time.Second, true
		}
	}
	return rl
}

// parseEndpoints reads the endpoint headers whose name keep accepts and
// returns the most restrictive (least remaining, then latest reset).
func parseEndpoints(h http.Header, keep func(name string) bool) RateLimit {
	var best *RateLimit
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		name := ""
		for _, p := range endpointPrefixes {
			if strings.HasPrefix(ck, p) {
				name = strings.ToLower(ck[len(p):])
				break
			}
		}
		if name == "" || !keep(name) {
			continue
		}
		for _, v := range vs {
			ep, ok := parseEndpointLimit(v)
			if !ok {
				continue
			}
			if best == nil || ep.Remaining < best.Remaining ||
				(ep.Remaining == best.Remaining && ep.Reset > best.Reset) {
				best = &ep
			}
		}
	}
	if best == nil {
		return RateLimit{}
	}
	return *best
}

// parseEndpointLimit reads "total=100; remaining=99; resets=12" (commas
// are accepted as separators too).
func parseEndpointLimit(v string) (RateLimit, bool) {
	var rl RateLimit
	var haveTotal, haveRemaining bool
	for part := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ';' || r == ',' }) {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "total", "limit":
			rl.Limit, haveTotal = n, true
		case "remaining":
			rl.Remaining, haveRemaining = n, true
		case "resets", "reset":
			rl.Reset = time.Duration(n) * time.Second
		}
	}
	if !haveTotal && !haveRemaining {
		return RateLimit{}, false
	}
	if !haveRemaining {
		rl.Remaining = rl.Limit // nothing said about remaining: do not invent 0
	}
	rl.Known = true
	return rl, true
}

func firstHeaderInt(h http.Header, keys []string) (int, bool) {
	for _, k := range keys {
		if n, ok := headerInt(h, k); ok {
			return n, true
		}
	}
	return 0, false
}

func headerInt(h http.Header, key string) (int, bool) {
	v := strings.TrimSpace(h.Get(key))
	if v == "" {
		return 0, false
	}
	// "ratelimit-limit: 700, 700;w=60" style: take the first number.
	if i := strings.IndexAny(v, ",;"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
