package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/zendesk"
)

// A wrong signing secret shows in Zendesk's own record: the calls
// deskrelay answered 401 since the last call it verified or the last time
// it read the secret (docs/ARCHITECTURE.md, the webhook receiver). Requests
// deskrelay's receiver counted as signature failures (anyone can send
// them) never count here.

// secretRereadEvery bounds how often the guardian has the receiver read
// the signing secret again.
const secretRereadEvery = time.Minute

// rejectionStatuses are the invocation statuses under which Zendesk records
// a call the endpoint answered with a status it does not retry: "failed"
// (documented) and "terminated" (recorded, with the endpoint's code).
var rejectionStatuses = []string{zendesk.InvocationFailed, zendesk.InvocationTerminated}

// Fields of Space.ReconcileGuardian this file owns.
const (
	fieldSecretReadAt = "secret_read_at" // unix ms of the last secret read that worked
)

// rejections reads Zendesk's record of calls deskrelay answered 401 into
// st (SignatureRejections, RejectionsSince) and marks the receiver
// unhealthy when there are any. An unreadable record is logged, not an
// error: the guardian then goes by what it knows.
func (g *Guardian) rejections(ctx context.Context, b *budget, st *WatchState, failures []zendesk.TargetFailure) {
	r := g.r
	st.SecretReadAt = g.secretReadAt(ctx)
	since := st.LastReceived
	if st.SecretReadAt.After(since) {
		since = st.SecretReadAt
	}
	var n int
	var err error
	if st.Kind == KindWebhook {
		floor := st.CheckedAt.Add(-InvocationRetention + invocationRetentionMargin)
		if since.Before(floor) {
			since = floor
		}
		n, err = g.rejectedInvocations(ctx, b, since)
	} else {
		// a target's 401 is a wrong DESKRELAY_TARGET_USER/PASSWORD; Zendesk
		// lists its recent failures only
		if floor := st.CheckedAt.Add(-time.Hour); since.Before(floor) {
			since = floor
		}
		if st.LastReenable.After(since) {
			since = st.LastReenable
		}
		n = rejectedTargetCalls(failures, st.Name, since)
	}
	if err != nil {
		r.log.Warn().Err(err).Str("kind", st.Kind).Str("webhook_id", st.ID).Msg("Zendesk's record of rejected calls unreadable")
		return
	}
	st.SignatureRejections, st.RejectionsSince = n, since.UTC()
	if n == 0 {
		return
	}
	st.ReceiverHealthy = false
	if st.Kind == KindWebhook {
		st.ReceiverProblem = fmt.Sprintf("Zendesk's record shows %d webhook calls answered 401 by deskrelay since %s: the secret deskrelay verifies with is not the one Zendesk signs with (check DESKRELAY_WEBHOOK_SECRET); re-activating would only make Zendesk count more failures",
			n, since.UTC().Format(time.RFC3339))
	} else {
		st.ReceiverProblem = fmt.Sprintf("Zendesk's record shows %d target calls answered 401 by deskrelay since %s (check DESKRELAY_TARGET_USER and DESKRELAY_TARGET_PASSWORD); re-activating would only make Zendesk count more failures",
			n, since.UTC().Format(time.RFC3339))
	}
}

// rejectedInvocations counts the webhook's invocations answered 401 that
// completed after since. A quiet webhook's record since then fits one page
// of every status: one request, counted here. A longer one is listed
// status by status (rejectedByStatus), so that a busy webhook's successes
// do not cost a request per page; the first page is then the only request
// spent in vain.
func (g *Guardian) rejectedInvocations(ctx context.Context, b *budget, since time.Time) (int, error) {
	r := g.r
	p, err := call(ctx, r, b, false, func(ctx context.Context) (*zendesk.InvocationsPage, error) {
		return r.zd.ListInvocations(ctx, r.cfg.WebhookID, zendesk.InvocationFilter{
			From: since.Truncate(time.Second), PageSize: r.cfg.Invocations.PageSize,
		})
	})
	if err != nil {
		return 0, fmt.Errorf("list invocations of webhook %s: %w", r.cfg.WebhookID, err)
	}
	if p.HasMore && p.AfterCursor != "" {
		return g.rejectedByStatus(ctx, b, since)
	}
	seen := map[string]bool{}
	n := 0
	for _, inv := range p.Invocations {
		if !seen[inv.ID] && slices.ContainsFunc(rejectionStatuses, func(s string) bool { return strings.EqualFold(s, inv.Status) }) &&
			inv.StatusCode == 401 && inv.LatestCompletedAt.After(since) {
			n++
		}
		seen[inv.ID] = true
	}
	return n, nil
}

// rejectedByStatus counts the webhook's invocations answered 401 that
// completed after since, listing the failed ones status by status (at
// most BreakerMaxPages pages each, the most recent first).
func (g *Guardian) rejectedByStatus(ctx context.Context, b *budget, since time.Time) (int, error) {
	r := g.r
	cfg := r.cfg.Invocations
	seen := map[string]bool{}
	n := 0
	for _, status := range rejectionStatuses {
		after := ""
		for page := 0; page < cfg.BreakerMaxPages; page++ {
			p, err := call(ctx, r, b, false, func(ctx context.Context) (*zendesk.InvocationsPage, error) {
				return r.zd.ListInvocations(ctx, r.cfg.WebhookID, zendesk.InvocationFilter{
					From: since.Truncate(time.Second), Status: status, After: after, PageSize: cfg.PageSize,
				})
			})
			if err != nil {
				return 0, fmt.Errorf("list %s invocations of webhook %s: %w", status, r.cfg.WebhookID, err)
			}
			for _, inv := range p.Invocations {
				if !seen[inv.ID] && inv.StatusCode == 401 && inv.LatestCompletedAt.After(since) {
					n++
				}
				seen[inv.ID] = true
			}
			if !p.HasMore || p.AfterCursor == "" || p.AfterCursor == after {
				break
			}
			after = p.AfterCursor
		}
	}
	return n, nil
}

// rejectedTargetCalls counts the target's recent failures answered 401
// after since.
func rejectedTargetCalls(fs []zendesk.TargetFailure, title string, since time.Time) int {
	n := 0
	for _, f := range fs {
		if title != "" && f.TargetName != "" && f.TargetName != title {
			continue
		}
		if f.StatusCode == 401 && f.CreatedAt.After(since) {
			n++
		}
	}
	return n
}

// rereadSecret has the receiver read the webhook's signing secret again
// when Zendesk's record shows 401s, at most once a minute (per process:
// each replica's receiver holds its own copy). A read that works is
// recorded: the 401s before it no longer count.
func (g *Guardian) rereadSecret(ctx context.Context, log zerolog.Logger, st *WatchState) {
	rs, ok := g.r.receiver.(SecretRefresher)
	if !ok || st.Kind != KindWebhook || st.SignatureRejections == 0 {
		return
	}
	now := g.r.cfg.Now()
	g.mu.Lock()
	if !g.lastReread.IsZero() && now.Sub(g.lastReread) < secretRereadEvery {
		g.mu.Unlock()
		return
	}
	g.lastReread = now
	g.mu.Unlock()
	if err := rs.RefreshSecret(ctx); err != nil {
		g.r.m.secretReread("error")
		log.Error().Err(err).Msg("reading the webhook's signing secret again failed")
		return
	}
	g.r.m.secretReread("ok")
	if err := g.r.rdb.HSet(ctx, g.r.space.ReconcileGuardian(), fieldSecretReadAt, now.UnixMilli()).Err(); err != nil {
		log.Warn().Err(err).Msg("record the signing secret's re-read")
	}
	st.SecretReadAt = now.UTC()
	log.Info().Msg("webhook signing secret read again from Zendesk: the 401s before it no longer count")
}

// secretReadAt is when a receiver last read the signing secret again with
// success (zero: never, or unreadable).
func (g *Guardian) secretReadAt(ctx context.Context) time.Time {
	v, err := g.r.rdb.HGet(ctx, g.r.space.ReconcileGuardian(), fieldSecretReadAt).Result()
	if errors.Is(err, redis.Nil) || err != nil {
		return time.Time{}
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
