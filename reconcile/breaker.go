package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/zendesk"
)

// Zendesk's documented circuit breaker for webhooks: it trips
// when 70 % of at least 100 requests in 5 minutes failed, or on more than
// 1,000 errors in 5 minutes.
const (
	ZendeskBreakerRatio       = 0.7
	ZendeskBreakerMinRequests = 100
	ZendeskBreakerMaxErrors   = 1000
)

// BreakerState is the webhook's recent delivery record, read from its
// invocations: the guardian's early warning before Zendesk's circuit
// breaker trips (70 % of at least 100 requests failed in 5 minutes, or over
// 1,000 errors), shown in WatchState.Breaker and so in /v1/status.
type BreakerState struct {
	// WindowSeconds is the look-back (Config.Invocations.BreakerWindow).
	WindowSeconds float64 `json:"window_seconds"`
	// Requests is the number of requests Zendesk made to deskrelay in the
	// window; Failed of them did not succeed; FailureRatio = Failed/Requests.
	Requests     int     `json:"requests"`
	Failed       int     `json:"failed"`
	FailureRatio float64 `json:"failure_ratio"`
	// StatusCodes counts the failed requests by the HTTP status Zendesk got
	// ("500", "502", …), or by the invocation status when it got none
	// ("timeout", "failed": no answer).
	StatusCodes map[string]int `json:"status_codes,omitempty"`
	// CircuitBroken is the number of events Zendesk did not even send in the
	// window because its breaker was open; Throttled the ones it held back
	// ("throttled", no status code: recorded, not documented). Neither is a
	// request; the reconciler recovers both from their stored payloads.
	CircuitBroken int `json:"circuit_broken,omitempty"`
	Throttled     int `json:"throttled,omitempty"`
	// Partial is true when the window held more invocations than were read
	// (Config.Invocations.BreakerMaxPages): the figures cover the most
	// recent ones.
	Partial bool `json:"partial,omitempty"`
	// Warning is true from the warn thresholds on, or when Zendesk held
	// events back (Throttled); Tripped when Zendesk's breaker dropped events
	// in the window. Message says it for people.
	Warning bool   `json:"warning"`
	Tripped bool   `json:"tripped"`
	Message string `json:"message,omitempty"`
	// Error is why the invocations could not be read.
	Error string `json:"error,omitempty"`
	// CheckedAt is when the figures were read.
	CheckedAt time.Time `json:"checked_at,omitzero"`
}

// breaker reads the webhook's invocations of the last BreakerWindow and
// computes its failure ratio. It never fails the guardian's check: an error
// is kept in the state.
func (g *Guardian) breaker(ctx context.Context, b *budget) *BreakerState {
	r := g.r
	cfg := r.cfg.Invocations
	now := r.cfg.Now().UTC()
	st := &BreakerState{WindowSeconds: cfg.BreakerWindow.Seconds(), CheckedAt: now}
	from := now.Add(-cfg.BreakerWindow).Truncate(time.Second)
	codes := map[string]int{}
	seen := map[string]bool{}
	after := ""
	for page := 0; ; page++ {
		if page == cfg.BreakerMaxPages {
			st.Partial = true
			break
		}
		p, err := call(ctx, r, b, false, func(ctx context.Context) (*zendesk.InvocationsPage, error) {
			return r.zd.ListInvocations(ctx, r.cfg.WebhookID, zendesk.InvocationFilter{From: from, After: after, PageSize: cfg.PageSize})
		})
		if err != nil {
			st.Error = fmt.Sprintf("list invocations of webhook %s: %v", r.cfg.WebhookID, err)
			return st
		}
		for _, inv := range p.Invocations {
			if seen[inv.ID] {
				continue
			}
			seen[inv.ID] = true
			switch status := strings.ToLower(inv.Status); status {
			case InvocationSuccess:
				st.Requests++
			case InvocationCircuitBroken:
				st.CircuitBroken++
			case InvocationThrottled:
				st.Throttled++
			default:
				st.Requests++
				st.Failed++
				key := status
				if inv.StatusCode > 0 {
					key = strconv.Itoa(inv.StatusCode)
				}
				codes[key]++
			}
		}
		if !p.HasMore || p.AfterCursor == "" || p.AfterCursor == after {
			break
		}
		after = p.AfterCursor
	}
	if len(codes) > 0 {
		st.StatusCodes = codes
	}
	if st.Requests > 0 {
		st.FailureRatio = float64(st.Failed) / float64(st.Requests)
	}
	st.Tripped = st.CircuitBroken > 0
	st.Warning = st.Tripped || st.Throttled > 0 || st.Failed >= cfg.BreakerWarnErrors ||
		(st.Requests >= cfg.BreakerWarnRequests && st.FailureRatio >= cfg.BreakerWarnRatio)
	if st.Warning {
		st.Message = st.describe()
	}
	return st
}

// window is the look-back for people: "5 min", "90 s".
func (st *BreakerState) window() string {
	if d := seconds(st.WindowSeconds); d%time.Minute == 0 {
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return fmt.Sprintf("%.0f s", st.WindowSeconds)
}

// Summary is the failure ratio in one line for `deskrelay webhook status`:
// "12 of 60 calls failed in the last 5 min (20%); Zendesk's breaker trips
// at 70% of at least 100 calls, or over 1000 errors, in 5 min".
func (st *BreakerState) Summary() string {
	if st.Error != "" {
		return "unknown: " + st.Error
	}
	s := fmt.Sprintf("%d of %d calls failed in the last %s (%.0f%%); Zendesk's breaker trips at %.0f%% of at least %d calls, or over %d errors, in 5 min",
		st.Failed, st.Requests, st.window(), 100*st.FailureRatio, 100*ZendeskBreakerRatio, ZendeskBreakerMinRequests, ZendeskBreakerMaxErrors)
	if st.Tripped {
		s += fmt.Sprintf("; TRIPPED: it dropped %d events", st.CircuitBroken)
	}
	if st.Partial {
		s += " (of the most recent invocations only)"
	}
	return s
}

// describe says what Zendesk saw, naming the status codes.
func (st *BreakerState) describe() string {
	var sb strings.Builder
	if st.Tripped {
		fmt.Fprintf(&sb, "Zendesk's circuit breaker dropped %d webhook events in the last %s (the reconciler recovers them); ", st.CircuitBroken, st.window())
	}
	if st.Throttled > 0 {
		fmt.Fprintf(&sb, "webhook events Zendesk held back and never sent in the last %s: throttled %d (the reconciler recovers them)", st.window(), st.Throttled)
		if st.Requests == 0 {
			return sb.String()
		}
		sb.WriteString("; ")
	}
	fmt.Fprintf(&sb, "%d of %d webhook requests in the last %s failed (%.0f%%)", st.Failed, st.Requests, st.window(), 100*st.FailureRatio)
	if len(st.StatusCodes) > 0 {
		keys := slices.SortedFunc(maps.Keys(st.StatusCodes), func(a, b string) int {
			if c := st.StatusCodes[b] - st.StatusCodes[a]; c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, st.StatusCodes[k]))
		}
		fmt.Fprintf(&sb, ", Zendesk got: %s", strings.Join(parts, ", "))
	}
	if !st.Tripped {
		fmt.Fprintf(&sb, "; Zendesk's circuit breaker trips at %.0f%% of at least %d requests or over %d errors in 5 minutes, and then drops events",
			100*ZendeskBreakerRatio, ZendeskBreakerMinRequests, ZendeskBreakerMaxErrors)
	}
	if st.Partial {
		sb.WriteString(" (figures of the most recent invocations only)")
	}
	return sb.String()
}

// recentBreaker is the breaker reading recorded in the guardian's state
// when it was taken in the current breaker slot (breakerSlots) without
// error, and the breaker watch is on; nil otherwise. The watch reads the
// figures once per slot, whoever reads them first: its own check, or a
// scheduled run's guardian check (which falls mid-slot).
func (g *Guardian) recentBreaker(ctx context.Context) *BreakerState {
	r := g.r
	if !r.watching() {
		return nil
	}
	st, ok, err := g.LastCheck(ctx)
	if err != nil || !ok || st.Breaker == nil || st.Breaker.Error != "" || st.Breaker.CheckedAt.IsZero() {
		return nil
	}
	if st.Breaker.CheckedAt.Before(r.breakerSlots().start(r.cfg.Now())) {
		return nil
	}
	return st.Breaker
}

// checkBreaker is the guardian's early warning: it reads the failure ratio
// into st.Breaker, logs at warn (error once the breaker dropped events),
// sets the metrics, and gives st.Reason when nothing else did. With reuse
// (a scheduled run's check), figures the breaker watch read in the current
// slot are taken as they are: that check logged and counted them already.
func (g *Guardian) checkBreaker(ctx context.Context, b *budget, log zerolog.Logger, st *WatchState, reuse bool) {
	if st.Kind != KindWebhook || st.ID == "" {
		return
	}
	if reuse {
		if bs := g.recentBreaker(ctx); bs != nil {
			st.Breaker = bs
			if bs.Warning && st.Reason == "" {
				st.Reason = bs.Message
			}
			return
		}
	}
	bs := g.breaker(ctx, b)
	st.Breaker = bs
	if bs.Error != "" {
		log.Warn().Str("error", bs.Error).Msg("webhook failure ratio unknown: invocations unreadable")
		return
	}
	g.r.im.breaker(bs)
	if !bs.Warning {
		return
	}
	ev := log.Warn()
	if bs.Tripped {
		ev = log.Error()
	}
	ev.Int("requests", bs.Requests).Int("failed", bs.Failed).Float64("failure_ratio", bs.FailureRatio).
		Interface("status_codes", bs.StatusCodes).Int("circuit_broken", bs.CircuitBroken).Int("throttled", bs.Throttled).
		Msg("zendesk is failing to deliver webhooks to deskrelay: " + bs.Message)
	if st.Reason == "" {
		st.Reason = bs.Message
	}
}

// CheckBreaker is the early warning on its own, for a schedule tighter
// than the reconcile interval (Zendesk's breaker looks at 5 minutes; the
// guardian's check runs once per reconcile run): it reads the failure
// ratio, logs and sets the metrics as the guardian's check does, and
// records it in the guardian's last state (/v1/status). Nil, nil when no
// webhook is configured.
func (g *Guardian) CheckBreaker(ctx context.Context) (*BreakerState, error) {
	r := g.r
	if r.cfg.WebhookID == "" {
		return nil, nil
	}
	st, ok, err := g.LastCheck(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		st = WatchState{Kind: KindWebhook, ID: r.cfg.WebhookID, State: "unknown", ReceiverHealthy: true, Ours: true}
	}
	if st.Reason != "" && st.Breaker != nil && st.Reason == st.Breaker.Message {
		st.Reason = "" // the last warning: replaced by this one
	}
	log := r.log.With().Str("kind", KindWebhook).Str("webhook_id", r.cfg.WebhookID).Logger()
	g.checkBreaker(ctx, &budget{}, log, &st, false)
	g.save(st)
	if st.Breaker != nil && st.Breaker.Error != "" {
		return st.Breaker, errors.New(st.Breaker.Error)
	}
	return st.Breaker, nil
}
