package reconcile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Window is a span of Zendesk ticket events to reconcile: Since inclusive,
// Until exclusive (zero Until: as recent as the export allows, now − Lag).
type Window struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// ErrBadWindow is wrapped by every error about a Backfill window.
var ErrBadWindow = errors.New("bad reconcile window")

// check validates w against now and clamps Until to now − lag, the most
// recent instant the export shows.
func (w Window) check(now time.Time, lag time.Duration) (Window, error) {
	latest := now.Add(-lag).Truncate(time.Second)
	switch {
	case w.Since.IsZero():
		return w, fmt.Errorf("%w: --since is required", ErrBadWindow)
	case w.Since.After(now):
		return w, fmt.Errorf("%w: --since %s is in the future", ErrBadWindow, w.Since.UTC().Format(time.RFC3339))
	case !w.Until.IsZero() && w.Until.Before(w.Since):
		return w, fmt.Errorf("%w: --until %s is before --since %s", ErrBadWindow,
			w.Until.UTC().Format(time.RFC3339), w.Since.UTC().Format(time.RFC3339))
	}
	if w.Until.IsZero() || w.Until.After(latest) {
		w.Until = latest
	}
	w.Since = w.Since.UTC().Truncate(time.Second)
	w.Until = w.Until.UTC()
	if !w.Since.Before(w.Until) {
		return w, fmt.Errorf("%w: the window is empty: Zendesk exports events only once they are %s old, so --since must be before %s",
			ErrBadWindow, lag, latest.Format(time.RFC3339))
	}
	return w, nil
}

// ParseSince reads a --since/--until value: an RFC 3339 time
// (2026-11-24T10:00:00Z), a date (2026-11-24, midnight UTC), or a duration
// ago counted from now (6h, 90m, 2d, 1d12h, 45s).
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("empty: give an RFC 3339 time (2026-11-24T10:00:00Z) or a duration ago (6h, 90m, 2d)")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UTC(), nil
	}
	if looksLikeTime(s) {
		return time.Time{}, fmt.Errorf("%q: not an RFC 3339 time; write it like 2026-11-24T10:00:00Z (with a zone)", s)
	}
	d, err := parseAgo(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: %w", s, err)
	}
	return now.Add(-d).UTC(), nil
}

func looksLikeTime(s string) bool {
	return len(s) >= 8 && s[4] == '-' && strings.IndexFunc(s[:4], func(r rune) bool { return r < '0' || r > '9' }) < 0
}

// parseAgo reads a positive duration with an optional leading day count:
// "2d", "1d12h", "90m", "6h".
func parseAgo(s string) (time.Duration, error) {
	const hint = "not an RFC 3339 time or a duration ago (6h, 90m, 2d)"
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		return 0, errors.New("give a positive duration ago, without a sign (6h, 90m, 2d)")
	}
	var total time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || i == 0 {
			return 0, errors.New(hint)
		}
		if n > 3650 {
			return 0, errors.New("more than 3650 days ago")
		}
		total = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
	}
	if s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, errors.New(hint)
		}
		if d < 0 {
			return 0, errors.New("give a positive duration ago, without a sign (6h, 90m, 2d)")
		}
		total += d
	}
	if total <= 0 {
		return 0, errors.New("the duration must be more than zero")
	}
	return total, nil
}
