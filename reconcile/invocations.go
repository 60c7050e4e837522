package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/zendesk"
)

// InvocationRetention is how long Zendesk keeps a webhook's invocations
// (and their payloads): 7 days. The reconciler never asks for older ones.
const InvocationRetention = 7 * 24 * time.Hour

// invocationRetentionMargin keeps requests clear of the retention's edge:
// Zendesk's clock and ours need not agree, and a page read later must not
// find its first invocations expired.
const invocationRetentionMargin = 10 * time.Minute

// invocationsSettle is how far the invocations checkpoint stays behind the
// end of the window a scheduled run read (now): an invocation still being
// retried, or stamped by a Zendesk clock behind ours, may complete with a
// time inside the window after it was listed. The next run lists that
// stretch again; the ledger skips what was already processed, so it costs
// a listing page, not the attempts.
const invocationsSettle = time.Minute

// Invocation statuses as Zendesk's webhook invocations report them; every
// status but success is recovered.
const (
	InvocationSuccess       = "success"
	InvocationCircuitBroken = "circuit broken"
	InvocationThrottled     = "throttled"
)

// FailureStatuses are the invocation statuses listed one by one
// (filter[status]) when a window holds too many invocations to list whole.
var FailureStatuses = []string{"failed", "timeout", "terminated", "throttled", InvocationCircuitBroken}

// recovered is one event read from an invocation's payload.
type recovered struct {
	ev  events.Event
	inv int // index in the run's invocation list
	seq int // position in its payload (the comment before the status it sets)
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

// recoverInvocations is the scan's first step when a webhook is
// configured: it lists the webhook's invocations over the window, reads the
// stored payload of every one that did not succeed and was not processed
// yet, and feeds it through the webhook path's parsing, forward rules and
// ledger (events.ParsePayload, the Publisher), with source "invocation".
// The events are published in the order they happened; an invocation is
// marked in the ledger only after its events are durable, and the
// invocations checkpoint (scheduled runs) moves only after that.
func (r *Reconciler) recoverInvocations(ctx context.Context, ru *runState, w Window, o scanOptions) (*InvocationsReport, error) {
	ir, err := r.startInvocations(ctx, w, o.lease != nil)
	if err != nil || !ir.Window.Since.Before(ir.Window.Until) {
		return ir, err
	}
	enqueuedBefore := ru.enqueued()
	failed, err := r.listFailed(ctx, ru, ir, ir.Window)
	if err != nil {
		return ir, err
	}
	toRead, err := r.selectUnprocessed(ctx, ir, failed)
	if err != nil {
		return ir, err
	}
	recs, done, err := r.readPayloads(ctx, ru, ir, toRead)
	if err != nil {
		return ir, err
	}
	if err := r.publishRecovered(ctx, ru, ir, recs); err != nil {
		return ir, err
	}
	ru.addFromInvocations(ru.enqueued() - enqueuedBefore)
	if ru.dry {
		return ir, nil
	}
	if err := r.markRecovered(ctx, o.lease, done, ir.Window.Until); err != nil {
		return ir, err
	}
	r.im.recovered(ir)
	return ir, nil
}

// startInvocations opens the step's report over its window
// (invocationWindow), warning when Zendesk's retention cut the window short.
func (r *Reconciler) startInvocations(ctx context.Context, w Window, scheduled bool) (*InvocationsReport, error) {
	iw, clamped, err := r.invocationWindow(ctx, w, scheduled)
	if err != nil {
		return nil, err
	}
	if clamped {
		r.log.Warn().Str("webhook_id", r.cfg.WebhookID).Time("since", w.Since).Time("clamped_to", iw.Since).
			Msg("reconcile: Zendesk keeps webhook invocations for 7 days: older ones are not requested (the ticket events export still covers them)")
	}
	return &InvocationsReport{Window: iw, Clamped: clamped, ByStatus: map[string]int{}}, nil
}

// invocationWindow is the span of invocations a scan reads: for a
// scheduled run from the invocations checkpoint up to now (the invocations
// log, unlike the export, holds nothing back: an event Zendesk dropped
// seconds ago is recovered by the next run, not once it is Lag old), for a
// Backfill the backfill's window; clamped to Zendesk's retention.
func (r *Reconciler) invocationWindow(ctx context.Context, w Window, scheduled bool) (Window, bool, error) {
	iw := w
	if scheduled {
		cp, ok, err := r.readCheckpoint(ctx, invocationsCheckpoint)
		if err != nil {
			return iw, false, err
		}
		if ok {
			iw.Since = cp
		}
		iw.Until = r.cfg.Now().UTC().Truncate(time.Second)
	}
	floor := r.cfg.Now().Add(-InvocationRetention + invocationRetentionMargin).UTC().Truncate(time.Second).Add(time.Second)
	clamped := false
	if iw.Since.Before(floor) {
		iw.Since, clamped = floor, true
	}
	return iw, clamped, nil
}

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

// selectUnprocessed picks, oldest first, the failed invocations the ledger
// does not have yet, up to MaxPerRun. The export of the same scan covers
// the whole window (and its checkpoint never skips), so the rest of a large
// outage is left to it rather than spend one request per invocation on
// events it delivers at 1,000 a request.
func (r *Reconciler) selectUnprocessed(ctx context.Context, ir *InvocationsReport, failed []zendesk.Invocation) ([]zendesk.Invocation, error) {
	slices.SortStableFunc(failed, func(a, b zendesk.Invocation) int { return a.LatestCompletedAt.Compare(b.LatestCompletedAt) })
	maxPerRun := r.cfg.Invocations.MaxPerRun
	var toRead []zendesk.Invocation
	for _, inv := range failed {
		seen, err := r.pub.Ledger().InvocationSeen(ctx, inv.ID)
		if err != nil {
			return nil, err
		}
		switch {
		case seen:
			ir.AlreadyProcessed++
		case len(toRead) == maxPerRun:
			ir.LeftToExport++
		default:
			toRead = append(toRead, inv)
		}
	}
	if ir.LeftToExport > 0 {
		r.log.Warn().Str("webhook_id", r.cfg.WebhookID).Int("left_to_export", ir.LeftToExport).Int("max_per_run", maxPerRun).
			Msg("reconcile: more failed webhook invocations than one run reads: the rest are left to the ticket events export, which covers the same window")
	}
	return toRead, nil
}

// readPayloads reads the attempts of each invocation in parallel (one
// request each, under the shared limiter) and parses their payloads
// (readInvocation). done lists the invocations that need no further look.
func (r *Reconciler) readPayloads(ctx context.Context, ru *runState, ir *InvocationsReport, invs []zendesk.Invocation) (recs []recovered, done []string, err error) {
	attempts := make([][]zendesk.Attempt, len(invs))
	errs := make([]error, len(invs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Concurrency)
	for i, inv := range invs {
		g.Go(func() error {
			attempts[i], errs[i] = call(gctx, r, ru.b, false, func(ctx context.Context) ([]zendesk.Attempt, error) {
				return r.zd.InvocationAttempts(ctx, r.cfg.WebhookID, inv.ID)
			})
			if errs[i] != nil && zendesk.KindOf(errs[i]) != zendesk.KindNotFound {
				return fmt.Errorf("read attempts of invocation %s: %w", inv.ID, errs[i])
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	for i, inv := range invs {
		evs, ok, err := r.readInvocation(ctx, ru, ir, inv, attempts[i], errs[i])
		if err != nil {
			return nil, nil, err
		}
		for j, ev := range evs {
			recs = append(recs, recovered{ev: ev, inv: i, seq: j})
		}
		if ok {
			done = append(done, inv.ID)
		}
	}
	return recs, done, nil
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

// publishRecovered publishes the recovered events of managed tickets in the
// order things happened: a status change recovered after a newer one would
// be dropped as stale.
func (r *Reconciler) publishRecovered(ctx context.Context, ru *runState, ir *InvocationsReport, recs []recovered) error {
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
			return err
		}
		if !managed {
			continue
		}
		ir.Events++
		if err := ru.publish(ctx, rc.ev); err != nil {
			return err
		}
	}
	return nil
}

// markRecovered runs once the recovered events are durable: it marks the
// invocations in the ledger, then (a scheduled run, holding lease l) moves
// the invocations checkpoint to until − invocationsSettle.
func (r *Reconciler) markRecovered(ctx context.Context, l *lease, ids []string, until time.Time) error {
	for _, id := range ids {
		if err := r.pub.Ledger().MarkInvocation(ctx, id); err != nil {
			return err
		}
	}
	if l == nil {
		return nil
	}
	return r.advanceCheckpoint(ctx, l, invocationsCheckpoint, until.Add(-invocationsSettle))
}
