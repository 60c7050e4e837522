package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/zendesk"
)

// InvocationRetention is how long Zendesk keeps a webhook's invocations
// (and their payloads): 7 days. The reconciler never asks for older ones.
const InvocationRetention = 7 * 24 * time.Hour

// invocationRetentionMargin keeps requests clear of the retention's edge:
// Zendesk's clock and ours need not agree, and a page read later must not
// find its first invocations expired.
const invocationRetentionMargin = 10 * time.Minute

// Defaults for InvocationsConfig.
const (
	DefaultInvocationsPageSize  = 100
	DefaultInvocationsMaxPerRun = 200
	DefaultInvocationsListPages = 10
	DefaultBreakerWindow        = 5 * time.Minute
	DefaultBreakerWarnRatio     = 0.5
	DefaultBreakerWarnRequests  = 50
	DefaultBreakerWarnErrors    = 500
	DefaultBreakerMaxPages      = 20
)

// Zendesk's documented circuit breaker (ZENDESK.md "Webhooks"): it trips
// when 70 % of at least 100 requests in 5 minutes failed, or on more than
// 1,000 errors in 5 minutes.
const (
	ZendeskBreakerRatio       = 0.7
	ZendeskBreakerMinRequests = 100
	ZendeskBreakerMaxErrors   = 1000
)

// Invocation statuses (ZENDESK.md "Webhooks"); every status but success is
// recovered.
const (
	InvocationSuccess       = "success"
	InvocationCircuitBroken = "circuit broken"
	InvocationThrottled     = "throttled"
)

// InvocationsConfig configures the recovery of webhook events from the
// webhook's invocations (Zendesk keeps their exact payloads for 7 days) and
// the early warning before Zendesk's circuit breaker trips. Both need
// Config.WebhookID; the zero value means the defaults.
type InvocationsConfig struct {
	// Disabled turns the recovery from invocations off: the ticket events
	// export alone backfills. The early warning stays on.
	Disabled bool
	// PageSize is page[size] of the invocations listing (1–100). Default 100.
	PageSize int
	// ListPages is how many pages of a window's invocations (successes
	// included) are read before listing only the failed ones, status by
	// status (filter[status], FailureStatuses): a busy webhook's successes
	// would cost a request per PageSize. Default 10.
	ListPages int
	// MaxPerRun bounds how many non-success invocations one run reads the
	// attempts of (one Zendesk request each, under the account's shared
	// rate limit), the oldest first; the rest of a large outage is left to
	// the ticket events export of the same run, which covers the same
	// window at 1,000 events a request (DESKRELAY_INVOCATIONS_MAX_PER_RUN).
	// Default 200.
	MaxPerRun int

	// BreakerWindow is the look-back of the failure ratio: Zendesk's breaker
	// looks at 5 minutes. Default 5m.
	BreakerWindow time.Duration
	// BreakerWarnRatio is the share of failed requests in BreakerWindow at
	// which the guardian warns, before Zendesk's 70 %
	// (DESKRELAY_WEBHOOK_FAILURE_WARN_RATIO). Default 0.5.
	BreakerWarnRatio float64
	// BreakerWarnRequests is the number of requests in BreakerWindow below
	// which the ratio does not warn, before Zendesk's 100
	// (DESKRELAY_WEBHOOK_FAILURE_WARN_MIN_REQUESTS). Default 50.
	BreakerWarnRequests int
	// BreakerWarnErrors is the number of failed requests in BreakerWindow
	// at which the guardian warns whatever the ratio, before Zendesk's 1,000
	// (DESKRELAY_WEBHOOK_FAILURE_WARN_ERRORS). Default 500.
	BreakerWarnErrors int
	// BreakerMaxPages bounds the invocation pages read for the ratio (the
	// most recent first). Default 20.
	BreakerMaxPages int
}

func (c InvocationsConfig) withDefaults() InvocationsConfig {
	c.PageSize = cmp.Or(c.PageSize, DefaultInvocationsPageSize)
	c.MaxPerRun = cmp.Or(c.MaxPerRun, DefaultInvocationsMaxPerRun)
	c.ListPages = cmp.Or(c.ListPages, DefaultInvocationsListPages)
	c.BreakerWindow = cmp.Or(c.BreakerWindow, DefaultBreakerWindow)
	c.BreakerWarnRatio = cmp.Or(c.BreakerWarnRatio, DefaultBreakerWarnRatio)
	c.BreakerWarnRequests = cmp.Or(c.BreakerWarnRequests, DefaultBreakerWarnRequests)
	c.BreakerWarnErrors = cmp.Or(c.BreakerWarnErrors, DefaultBreakerWarnErrors)
	c.BreakerMaxPages = cmp.Or(c.BreakerMaxPages, DefaultBreakerMaxPages)
	return c
}

func (c InvocationsConfig) validate() error {
	switch {
	case c.PageSize < 1 || c.PageSize > 100:
		return errors.New("reconcile Config.Invocations.PageSize: between 1 and 100 (Zendesk's page[size])")
	case c.MaxPerRun < 1:
		return errors.New("DESKRELAY_INVOCATIONS_MAX_PER_RUN: at least 1")
	case c.ListPages < 1:
		return errors.New("reconcile Config.Invocations.ListPages: at least 1")
	case c.BreakerWindow < time.Second || c.BreakerWindow > InvocationRetention:
		return errors.New("reconcile Config.Invocations.BreakerWindow: between 1s and 7 days")
	case c.BreakerWarnRatio <= 0 || c.BreakerWarnRatio > 1:
		return errors.New("DESKRELAY_WEBHOOK_FAILURE_WARN_RATIO: above 0 and at most 1 (Zendesk's breaker trips at 0.7)")
	case c.BreakerWarnRequests < 1:
		return errors.New("DESKRELAY_WEBHOOK_FAILURE_WARN_MIN_REQUESTS: at least 1 (Zendesk's breaker needs 100)")
	case c.BreakerWarnErrors < 1:
		return errors.New("DESKRELAY_WEBHOOK_FAILURE_WARN_ERRORS: at least 1 (Zendesk's breaker trips over 1000)")
	case c.BreakerMaxPages < 1:
		return errors.New("reconcile Config.Invocations.BreakerMaxPages: at least 1")
	}
	return nil
}

// Invocations is the part of *zendesk.Client the recovery from invocations
// uses: the invocations listing, an invocation's attempts with their
// payloads, and a ticket's comments (a trigger body names its comment only).
type Invocations interface {
	ListInvocations(ctx context.Context, webhookID string, f zendesk.InvocationFilter) (*zendesk.InvocationsPage, error)
	InvocationAttempts(ctx context.Context, webhookID, invocationID string) ([]zendesk.Attempt, error)
	ListComments(ctx context.Context, ticketID int64) ([]zendesk.Comment, error)
}

// InvocationsReport is what a run recovered from the webhook's invocations.
type InvocationsReport struct {
	// Window is the span of latest_completed_at read (both ends inclusive).
	Window Window `json:"window"`
	// Clamped is true when the window was moved up to Zendesk's 7-day
	// retention: invocations older than that are gone.
	Clamped bool `json:"clamped,omitempty"`
	// Pages is the number of listing pages read.
	Pages int `json:"pages"`
	// ByStatusOnly is true when the window held more than ListPages pages
	// of invocations: only the failed ones were listed, status by status
	// (FailureStatuses), and Listed counts those.
	ByStatusOnly bool `json:"by_status_only,omitempty"`
	// Listed is the number of invocations in the window; NotSucceeded of
	// them did not succeed (ByStatus counts them by status).
	Listed       int            `json:"listed"`
	NotSucceeded int            `json:"not_succeeded"`
	ByStatus     map[string]int `json:"by_status,omitempty"`
	// AlreadyProcessed is the number the ledger already had (the receiver
	// got them after all, or an earlier run recovered them).
	AlreadyProcessed int `json:"already_processed"`
	// Recovered is the number whose payload was read and published now.
	Recovered int `json:"recovered"`
	// Events is the number of events those payloads held (the Report's
	// FromInvocations of them were enqueued; the rest were delivered
	// already or filtered).
	Events int `json:"events"`
	// Ignored is the number of payloads of event types deskrelay does not
	// forward; Unparseable the number it could not read (logged, counted,
	// never retried); NoPayload the number whose attempts held no body.
	Ignored     int `json:"ignored,omitempty"`
	Unparseable int `json:"unparseable,omitempty"`
	NoPayload   int `json:"no_payload,omitempty"`
	// LeftToExport is the number over MaxPerRun, not read: the ticket
	// events export of the same run delivers their events.
	LeftToExport int `json:"left_to_export,omitempty"`
	// Error is why the step stopped early, if it did.
	Error string `json:"error,omitempty"`
}

// recovered is one event read from an invocation's payload.
type recovered struct {
	ev  events.Event
	inv int // index in the run's invocation list
	seq int // position in its payload (the comment before the status it sets)
}

// invocationWindow is the span of invocations a scan reads: for a
// scheduled run from the invocations checkpoint to the export window's end
// (never ahead of what the export covers in the same run), for a Backfill
// the backfill's window; clamped to Zendesk's retention.
func (r *Reconciler) invocationWindow(ctx context.Context, w Window, scheduled bool) (Window, bool, error) {
	iw := w
	if scheduled {
		cp, ok, err := r.readUnix(ctx, keys.ReconcileInvocationsCheckpoint)
		if err != nil {
			return iw, false, err
		}
		if ok {
			iw.Since = cp
		}
	}
	floor := r.cfg.Now().Add(-InvocationRetention + invocationRetentionMargin).UTC().Truncate(time.Second).Add(time.Second)
	clamped := false
	if iw.Since.Before(floor) {
		iw.Since, clamped = floor, true
	}
	return iw, clamped, nil
}

// recoverInvocations is the scan's first step when a webhook is
// configured: it lists the webhook's invocations over the window, reads the
// stored payload of every one that did not succeed and was not processed
// yet, and feeds it through the webhook path's parsing, forward rules and
// ledger (events.ParsePayload, the Publisher), with source "invocation".
// The events are published in the order they happened; an invocation is
// marked in the ledger only after its events are durable, and the
// invocations checkpoint (scheduled runs) moves only after that.
func (r *Reconciler) recoverInvocations(ctx context.Context, ru *runState, w Window, o scanOptions) (*InvocationsReport, error) {
	cfg := r.cfg.Invocations
	iw, clamped, err := r.invocationWindow(ctx, w, o.lease != nil)
	if err != nil {
		return nil, err
	}
	ir := &InvocationsReport{Window: iw, Clamped: clamped, ByStatus: map[string]int{}}
	log := r.log.With().Str("webhook_id", r.cfg.WebhookID).Logger()
	if clamped {
		log.Warn().Time("since", w.Since).Time("clamped_to", iw.Since).
			Msg("reconcile: Zendesk keeps webhook invocations for 7 days: older ones are not requested (the ticket events export still covers them)")
	}
	if !iw.Since.Before(iw.Until) {
		return ir, nil
	}
	enqueuedBefore := ru.enqueued()

	// 1. list the window, keep what did not succeed
	failed, err := r.listFailed(ctx, ru, ir, iw)
	if err != nil {
		return ir, err
	}
	// oldest first: a capped run reads the oldest, the export covers the rest
	slices.SortStableFunc(failed, func(a, b zendesk.Invocation) int { return a.LatestCompletedAt.Compare(b.LatestCompletedAt) })

	// 2. read the payloads of the ones not processed yet, up to MaxPerRun:
	// the export of this same scan covers the whole window (and its
	// checkpoint never skips), so the rest of a large outage is left to it
	// rather than spend one request per invocation on events it delivers
	// at 1,000 a request
	var toRead []int
	for i, inv := range failed {
		seen, err := r.pub.Ledger().InvocationSeen(ctx, inv.ID)
		if err != nil {
			return ir, err
		}
		switch {
		case seen:
			ir.AlreadyProcessed++
		case len(toRead) == cfg.MaxPerRun:
			ir.LeftToExport++
		default:
			toRead = append(toRead, i)
		}
	}
	// the attempts in parallel (one request each, under the shared limiter)
	attempts := make([][]zendesk.Attempt, len(failed))
	errs := make([]error, len(failed))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Concurrency)
	for _, i := range toRead {
		id := failed[i].ID
		g.Go(func() error {
			attempts[i], errs[i] = call(gctx, r, ru.b, false, func(ctx context.Context) ([]zendesk.Attempt, error) {
				return r.zd.InvocationAttempts(ctx, r.cfg.WebhookID, id)
			})
			if errs[i] != nil && zendesk.KindOf(errs[i]) != zendesk.KindNotFound {
				return fmt.Errorf("read attempts of invocation %s: %w", id, errs[i])
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return ir, err
	}
	var recs []recovered
	var toMark []string
	for _, i := range toRead {
		evs, done, err := r.readInvocation(ctx, ru, ir, failed[i], attempts[i], errs[i])
		if err != nil {
			return ir, err
		}
		for j, ev := range evs {
			recs = append(recs, recovered{ev: ev, inv: i, seq: j})
		}
		if done {
			toMark = append(toMark, failed[i].ID)
		}
	}
	if ir.LeftToExport > 0 {
		log.Warn().Int("left_to_export", ir.LeftToExport).Int("max_per_run", cfg.MaxPerRun).
			Msg("reconcile: more failed webhook invocations than one run reads: the rest are left to the ticket events export, which covers the same window")
	}

	// 3. publish in the order things happened: a status change recovered
	// after a newer one would be dropped as stale
	slices.SortStableFunc(recs, func(a, b recovered) int {
		if c := a.ev.OccurredAt.Compare(b.ev.OccurredAt); c != 0 {
			return c
		}
		if a.inv != b.inv {
			return a.inv - b.inv
		}
		return a.seq - b.seq
	})
	for _, rc := range recs {
		managed, err := ru.isManaged(ctx, rc.ev.TicketID)
		if err != nil {
			return ir, err
		}
		if !managed {
			continue
		}
		ir.Events++
		if err := ru.publish(ctx, rc.ev); err != nil {
			return ir, err
		}
	}
	ru.addFromInvocations(ru.enqueued() - enqueuedBefore)
	if ru.dry {
		return ir, nil
	}
	// 4. the events are durable: mark the invocations, then move the checkpoint
	for _, id := range toMark {
		if err := r.pub.Ledger().MarkInvocation(ctx, id); err != nil {
			return ir, err
		}
	}
	if o.lease != nil {
		n, err := advanceScript.Run(ctx, r.rdb, []string{keys.ReconcileLease, keys.ReconcileInvocationsCheckpoint}, o.lease.token, iw.Until.Unix()).Int()
		if err != nil {
			return ir, fmt.Errorf("move invocations checkpoint: %w", err)
		}
		if n < 0 {
			return ir, errLeaseLost
		}
	}
	r.im.recovered(ir)
	return ir, nil
}

// FailureStatuses are the invocation statuses listed one by one
// (filter[status]) when a window holds too many invocations to list whole.
var FailureStatuses = []string{"failed", "timeout", "terminated", "throttled", InvocationCircuitBroken}

// listFailed lists the invocations of iw that did not succeed: the whole
// listing when it takes at most ListPages pages, else (a busy webhook, a
// long window) one filtered listing per status in FailureStatuses, so that
// the successes of a busy webhook do not cost a request per 100.
func (r *Reconciler) listFailed(ctx context.Context, ru *runState, ir *InvocationsReport, iw Window) ([]zendesk.Invocation, error) {
	var failed []zendesk.Invocation
	seen := map[string]bool{}
	keep := func(inv zendesk.Invocation) {
		if seen[inv.ID] {
			return
		}
		seen[inv.ID] = true
		ir.Listed++
		if strings.EqualFold(inv.Status, InvocationSuccess) {
			return
		}
		ir.NotSucceeded++
		ir.ByStatus[inv.Status]++
		failed = append(failed, inv)
	}
	complete, err := r.listPages(ctx, ru, ir, iw, "", r.cfg.Invocations.ListPages, keep)
	if err != nil || complete {
		return failed, err
	}
	ir.ByStatusOnly = true
	r.log.Info().Str("webhook_id", r.cfg.WebhookID).Int("pages", ir.Pages).Time("since", iw.Since).
		Msg("reconcile: many webhook invocations in the window: listing the failed ones by status")
	failed, ir.Listed, ir.NotSucceeded = nil, 0, 0
	clear(seen)
	clear(ir.ByStatus)
	for _, st := range FailureStatuses {
		if _, err := r.listPages(ctx, ru, ir, iw, st, 0, keep); err != nil {
			return nil, err
		}
	}
	return failed, nil
}

// listPages reads the listing of iw (filtered by status when not empty),
// at most maxPages pages (0: all), calling fn with each invocation;
// complete is false when it stopped at maxPages.
func (r *Reconciler) listPages(ctx context.Context, ru *runState, ir *InvocationsReport, iw Window, status string, maxPages int, fn func(zendesk.Invocation)) (complete bool, err error) {
	after := ""
	for n := 0; ; n++ {
		if maxPages > 0 && n == maxPages {
			return false, nil
		}
		page, err := call(ctx, r, ru.b, false, func(ctx context.Context) (*zendesk.InvocationsPage, error) {
			return r.zd.ListInvocations(ctx, r.cfg.WebhookID, zendesk.InvocationFilter{
				From: iw.Since, To: iw.Until, Status: status, After: after, PageSize: r.cfg.Invocations.PageSize,
			})
		})
		if err != nil {
			return false, fmt.Errorf("list invocations of webhook %s: %w", r.cfg.WebhookID, err)
		}
		ir.Pages++
		for _, inv := range page.Invocations {
			fn(inv)
		}
		if !page.HasMore || page.AfterCursor == "" || page.AfterCursor == after {
			return true, nil
		}
		after = page.AfterCursor
		if err := ctx.Err(); err != nil {
			return false, context.Cause(ctx)
		}
	}
}

// readInvocation parses one invocation's stored payload (from its
// attempts, or their error: not found) as the receiver does. done is true when the invocation needs no further
// look (its events are returned, or its payload is unusable: counted and
// logged, never retried).
func (r *Reconciler) readInvocation(ctx context.Context, ru *runState, ir *InvocationsReport, inv zendesk.Invocation, attempts []zendesk.Attempt, err error) ([]events.Event, bool, error) {
	log := r.log.With().Str("webhook_id", r.cfg.WebhookID).Str("invocation_id", inv.ID).
		Str("invocation_status", inv.Status).Int("zendesk_status", inv.StatusCode).Logger()
	if err != nil { // not found: the only error the caller passes on
		ir.NoPayload++
		log.Warn().Msg("reconcile: webhook invocation gone from Zendesk (older than 7 days?): its events are left to the ticket events export")
		return nil, false, nil
	}
	body := ""
	for i := len(attempts) - 1; i >= 0; i-- { // every attempt sends the same body; take the latest
		if p := attempts[i].Request.Payload; strings.TrimSpace(p) != "" {
			body = p
			break
		}
	}
	if body == "" {
		ir.NoPayload++
		log.Warn().Int("attempts", len(attempts)).Msg("reconcile: webhook invocation holds no payload: its events are left to the ticket events export")
		return nil, true, nil
	}
	pl, err := events.ParsePayload([]byte(body), events.SourceInvocation)
	if err != nil {
		ir.Unparseable++
		if !ru.dry {
			r.im.unparseable()
		}
		// the error says what is wrong without echoing the body
		log.Error().Err(err).Int("bytes", len(body)).Msg("reconcile: recovered webhook payload unreadable: counted and dropped, not retried")
		return nil, true, nil
	}
	ir.Recovered++
	if pl.Ignored {
		ir.Ignored++
		return nil, true, nil
	}
	evs := pl.Events
	if pl.Comment != nil {
		ev, ok, err := r.resolveTriggerComment(ctx, ru, pl, inv.LatestCompletedAt)
		if err != nil {
			return nil, false, err
		}
		if ok {
			// the comment first: in one update, the reply comes before the status it sets
			evs = append([]events.Event{ev}, evs...)
		}
	}
	log.Debug().Int64("ticket_id", pl.TicketID).Int("events", len(evs)).Msg("reconcile: webhook invocation recovered")
	return evs, true, nil
}

// resolveTriggerComment reads the comment a trigger body names through the
// API with the webhook worker's implementation (Publisher.ResolveComment),
// the reconciler's user cache and its request accounting; ok is false when
// there is nothing to publish (counted as the export path counts it).
func (r *Reconciler) resolveTriggerComment(ctx context.Context, ru *runState, pl *events.Payload, fallback time.Time) (events.Event, bool, error) {
	managed, err := ru.isManaged(ctx, pl.TicketID)
	if err != nil || !managed {
		return events.Event{}, false, err
	}
	ev, reason, err := r.pub.ResolveComment(ctx, pl, commentReader{r: r, ru: ru}, events.SourceInvocation, fallback)
	if err != nil {
		return events.Event{}, false, err
	}
	if ev == nil {
		ru.countSkip(reason)
		if reason == events.SkipGone {
			r.log.Warn().Int64("ticket_id", pl.TicketID).Int64("comment_id", pl.Comment.ID).Msg("comment named by a recovered trigger body no longer exists")
		}
		return events.Event{}, false, nil
	}
	return *ev, true, nil
}

// commentReader is events.CommentReader on the reconciler's client, rate
// limits and user cache.
type commentReader struct {
	r  *Reconciler
	ru *runState
}

func (c commentReader) Comments(ctx context.Context, ticketID int64) ([]zendesk.Comment, error) {
	return call(ctx, c.r, c.ru.b, false, func(ctx context.Context) ([]zendesk.Comment, error) {
		return c.r.zd.ListComments(ctx, ticketID)
	})
}

func (c commentReader) Author(ctx context.Context, userID int64) (events.Author, error) {
	return c.r.user(ctx, c.ru, userID)
}

func (ru *runState) enqueued() int {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	return ru.rep.Enqueued
}

func (ru *runState) addFromInvocations(n int) {
	ru.mu.Lock()
	ru.rep.FromInvocations += n
	ru.mu.Unlock()
}

// countSkip counts a recovered trigger comment that was not read: the
// ledger had it (already delivered), or a forward rule drops it.
func (ru *runState) countSkip(reason string) {
	if reason == events.SkipUnmanaged {
		return // not an event of a managed ticket: not counted, as in the export path
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	ru.rep.EventsFound++
	if reason == events.ResolvedDuplicate {
		ru.rep.AlreadyDelivered++
		return
	}
	ru.rep.Filtered[reason]++
}

// dryOnce makes a dry run count an event once when both paths find it: the
// real run's ledger would have it after the first.
func (ru *runState) dryOnce(out events.Outcome) events.Outcome {
	if out.Result != events.ResultEnqueued {
		return out
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if ru.dryIDs[out.Event.ID] {
		return events.Outcome{Result: events.ResultDuplicate, Reason: "ledger", Event: out.Event}
	}
	if ru.dryIDs == nil {
		ru.dryIDs = map[string]bool{}
	}
	ru.dryIDs[out.Event.ID] = true
	return out
}

// invocationStep runs recoverInvocations for a scan and records its report.
// Its error does not stop the scan (the export is the backstop, and a
// webhook whose invocations cannot be read must not hold the export back):
// it is logged and returned for the Report's Errors.
func (r *Reconciler) invocationStep(ctx context.Context, ru *runState, w Window, o scanOptions) error {
	ir, err := r.recoverInvocations(ctx, ru, w, o)
	if ir == nil {
		ir = &InvocationsReport{}
	}
	if err != nil {
		err = fmt.Errorf("recover webhook invocations: %w", err)
		ir.Error = err.Error()
		if ctx.Err() == nil {
			r.log.Error().Err(err).Str("webhook_id", r.cfg.WebhookID).Msg("reconcile: dropped webhook events not recovered from invocations this run (the ticket events export still runs)")
		}
	}
	if len(ir.ByStatus) == 0 {
		ir.ByStatus = nil
	}
	ru.mu.Lock()
	ru.rep.Invocations = ir
	ru.mu.Unlock()
	return err
}

// Summary is one line for people: what the run read of the webhook's
// invocations (`deskrelay reconcile` prints it after the counts).
func (ir *InvocationsReport) Summary() string {
	if ir == nil {
		return "not read (no webhook configured)"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d listed since %s", ir.Listed, ir.Window.Since.UTC().Format(time.RFC3339))
	if ir.Clamped {
		sb.WriteString(" (Zendesk keeps 7 days)")
	}
	if ir.ByStatusOnly {
		sb.WriteString(" (a busy window: the failed ones listed by status)")
	}
	fmt.Fprintf(&sb, ", %d did not succeed", ir.NotSucceeded)
	if len(ir.ByStatus) > 0 {
		parts := make([]string, 0, len(ir.ByStatus))
		for _, k := range slices.Sorted(maps.Keys(ir.ByStatus)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, ir.ByStatus[k]))
		}
		fmt.Fprintf(&sb, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&sb, "; %d recovered, %d already processed", ir.Recovered, ir.AlreadyProcessed)
	if ir.LeftToExport > 0 {
		fmt.Fprintf(&sb, ", %d left to the export", ir.LeftToExport)
	}
	if ir.Unparseable > 0 {
		fmt.Fprintf(&sb, ", %d unreadable (dropped)", ir.Unparseable)
	}
	if ir.NoPayload > 0 {
		fmt.Fprintf(&sb, ", %d without payload", ir.NoPayload)
	}
	if ir.Error != "" {
		sb.WriteString("; stopped: " + ir.Error)
	}
	return sb.String()
}
