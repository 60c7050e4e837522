package zendesk

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseRateLimit reads Zendesk's rate-limit headers. The most specific
// header wins: Zendesk-RateLimit-<endpoint> ("total=100; remaining=99;
// resets=12"; the most restrictive one when several endpoints are named),
// then ratelimit-limit/-remaining/-reset, then X-Rate-Limit and
// X-Rate-Limit-Remaining. Unreadable values are ignored.
func ParseRateLimit(h http.Header) RateLimit {
	var rl RateLimit
	// Least specific first; later forms overwrite what they carry.
	if n, ok := headerInt(h, "X-Rate-Limit"); ok {
		rl.Limit, rl.Known = n, true
	}
	if n, ok := headerInt(h, "X-Rate-Limit-Remaining"); ok {
		rl.Remaining, rl.Known = n, true
	}
	if n, ok := headerInt(h, "Ratelimit-Limit"); ok {
		rl.Limit, rl.Known = n, true
	}
	if n, ok := headerInt(h, "Ratelimit-Remaining"); ok {
		rl.Remaining, rl.Known = n, true
	}
	if n, ok := headerInt(h, "Ratelimit-Reset"); ok {
		rl.Reset, rl.Known = time.Duration(n)*time.Second, true
	}

	var best *RateLimit
	for k, vs := range h {
		if !strings.HasPrefix(http.CanonicalHeaderKey(k), "Zendesk-Ratelimit-") {
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
	if best != nil {
		rl = *best
	}
	return rl
}

// parseEndpointLimit reads "total=100; remaining=99; resets=12".
func parseEndpointLimit(v string) (RateLimit, bool) {
	var rl RateLimit
	var haveTotal, haveRemaining bool
	for part := range strings.SplitSeq(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "total":
			rl.Limit, haveTotal = n, true
		case "remaining":
			rl.Remaining, haveRemaining = n, true
		case "resets":
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
