package budget

import (
	"fmt"
	"strconv"
	"strings"
)

// Rate is how many requests a minute deskrelay may use of a Zendesk
// budget: a fixed number, or a share of the limit Zendesk reports for it
// (DESKRELAY_ZENDESK_RATE_LIMIT "50%", DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT
// "70%"). The zero Rate is unset (the Config default applies).
type Rate struct {
	perMinute int // > 0: a fixed number a minute
	percent   int // > 0: a share of the reported limit
}

// PerMinute is a fixed rate of n requests a minute.
func PerMinute(n int) Rate { return Rate{perMinute: n} }

// Share is percent of the limit Zendesk reports.
func Share(percent int) Rate { return Rate{percent: percent} }

// ParseRate reads "400" (requests a minute) or "50%" (a share, 1 to 100,
// of the reported limit). field names the setting in errors.
func ParseRate(field, s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(pct))
		if err != nil || n < 1 || n > 100 {
			return Rate{}, fmt.Errorf("%s: a share must be 1%% to 100%% of Zendesk's limit, got %q", field, s)
		}
		return Share(n), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return Rate{}, fmt.Errorf("%s: must be requests per minute (a positive whole number) or a share like 50%%, got %q", field, s)
	}
	return PerMinute(n), nil
}

// IsZero reports whether r is unset.
func (r Rate) IsZero() bool { return r.perMinute <= 0 && r.percent <= 0 }

// Of is the rate a minute r allows of a budget whose limit is limit (at
// least 1).
func (r Rate) Of(limit int) int {
	if r.perMinute > 0 {
		return r.perMinute
	}
	return max(1, limit*r.percent/100)
}

// String is r as ParseRate reads it.
func (r Rate) String() string {
	if r.perMinute > 0 {
		return strconv.Itoa(r.perMinute)
	}
	return strconv.Itoa(r.percent) + "%"
}

// MarshalText makes r readable in /v1/status.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// fixed and share are r's arguments to allowScript: a fixed rate, or 0 and
// a percent.
func (r Rate) args() (fixed, percent int) { return r.perMinute, r.percent }
