package reconcile

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/deskrelay/deskrelay/internal/events"
)

// scanOptions say what a scan does besides reading.
type scanOptions struct {
	dry      bool
	progress io.Writer
	// onPage is called after a page's events are durable with the instant
	// before which every event of the window has been published.
	onPage func(ctx context.Context, at time.Time) error
	// budget counts the requests and waits (a new one when nil).
	budget *budget
	// lease is the scheduled run's: the invocations checkpoint moves under
	// it (nil for Backfill, which has none).
	lease *lease
}

// scan is the work of one run (scheduled or Backfill) over w: the
// webhook's invocations first (when a webhook is configured), then the
// ticket events export; it publishes (a dry run: checks) the events.
func (r *Reconciler) scan(ctx context.Context, w Window, o scanOptions) (Report, error) {
	started := time.Now()
	if o.budget == nil {
		o.budget = &budget{}
	}
	ru := &runState{
		r: r, dry: o.dry, b: o.budget,
		rep:     Report{Window: w, DryRun: o.dry, StartedAt: started.UTC(), Filtered: map[string]int{}},
		managed: map[int64]bool{},
		status:  map[int64]string{},
		sim:     map[int64]simStatus{},
	}
	var ierr error
	if r.cfg.WebhookID != "" && !r.cfg.Invocations.Disabled {
		// first the webhook's own record of what it failed to deliver
		// (invocations.go), then the export: the ledger drops what both
		// find; a failure here is reported, and the export still runs
		ierr = r.invocationStep(ctx, ru, w, o)
	}
	err := r.walk(ctx, ru, w, o)
	rep := ru.report()
	rep.Duration = time.Since(started)
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	if ierr != nil {
		rep.Errors = append(rep.Errors, ierr.Error())
	}
	r.m.report(rep)
	return rep, err
}

// runState is one scan's counters and caches.
type runState struct {
	r   *Reconciler
	dry bool
	b   *budget

	mu      sync.Mutex
	rep     Report
	managed map[int64]bool
	status  map[int64]string
	sim     map[int64]simStatus // dry run: the ticket's last status as the real run would have recorded it
	dryIDs  map[string]bool     // dry run: the events this run would have enqueued (invocations.go)
}

type simStatus struct {
	status string
	at     int64
}

func (ru *runState) report() Report {
	ru.mu.Lock()
	rep := ru.rep
	ru.mu.Unlock()
	rep.ZendeskRequests, rep.RateLimited, rep.RateLimitWait = ru.b.snapshot()
	rep.FromTicketEvents = rep.Enqueued - rep.FromInvocations
	if len(rep.Filtered) == 0 {
		rep.Filtered = nil
	}
	return rep
}

func (ru *runState) progress(w io.Writer, upTo time.Time) {
	rep := ru.report()
	fmt.Fprintf(w, "page %d: events up to %s; tickets scanned %d (not ours %d); events found %d, already delivered %d, %s %d; zendesk requests %d, waited %s\n",
		rep.Pages, upTo.Format(time.RFC3339), rep.TicketsScanned, rep.TicketsSkipped, rep.EventsFound, rep.AlreadyDelivered,
		map[bool]string{true: "would enqueue", false: "enqueued"}[ru.dry], rep.Enqueued, rep.ZendeskRequests, rep.RateLimitWait.Round(time.Millisecond))
}

func (ru *runState) isManaged(ctx context.Context, ticketID int64) (bool, error) {
	ru.mu.Lock()
	m, ok := ru.managed[ticketID]
	ru.mu.Unlock()
	if ok {
		return m, nil
	}
	_, m, err := ru.r.tickets.ConversationOf(ctx, ticketID)
	if err != nil {
		return false, err
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if _, ok := ru.managed[ticketID]; !ok {
		ru.managed[ticketID] = m
		ru.rep.TicketsScanned++
		if !m {
			ru.rep.TicketsSkipped++
		}
	}
	return m, nil
}

func (ru *runState) lastStatus(ticketID int64) string {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	return ru.status[ticketID]
}

func (ru *runState) setStatus(ticketID int64, s string) {
	if s == "" {
		return
	}
	ru.mu.Lock()
	ru.status[ticketID] = s
	ru.mu.Unlock()
}

// publish hands one event to the Publisher (Check in a dry run) and counts
// the outcome.
func (ru *runState) publish(ctx context.Context, ev events.Event) error {
	var out events.Outcome
	var err error
	if ru.dry {
		out, err = ru.check(ctx, ev)
		if err == nil {
			out = ru.dryOnce(out)
		}
	} else {
		out, err = ru.r.pub.Publish(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("publish %s: %w", ev.ID, err)
	}
	if out.Result == events.ResultSkipped && (out.Reason == events.SkipStatusUnchanged || out.Reason == events.SkipStatusStale) {
		// the status gate answers before the ledger: a change the webhook
		// delivered is "already delivered", not filtered
		seen, err := ru.r.pub.Ledger().Seen(ctx, ev.ID)
		if err != nil {
			return fmt.Errorf("publish %s: %w", ev.ID, err)
		}
		if seen {
			out.Result, out.Reason = events.ResultDuplicate, "ledger"
		}
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	ru.rep.EventsFound++
	switch out.Result {
	case events.ResultEnqueued:
		ru.rep.Enqueued++
		ru.r.log.Debug().Int64("ticket_id", ev.TicketID).Str("event_id", ev.ID).Bool("dry_run", ru.dry).Msg("reconcile: missing event enqueued")
	case events.ResultDuplicate:
		ru.rep.AlreadyDelivered++
	default:
		ru.rep.Filtered[out.Reason]++
	}
	return nil
}

// check is the dry run's Publish: the Publisher's Check, plus, for status
// changes, the ticket's last status as the events before it in this run
// would have recorded it (Check alone sees only what Redis holds).
func (ru *runState) check(ctx context.Context, ev events.Event) (events.Outcome, error) {
	out, err := ru.r.pub.Check(ctx, ev)
	if err != nil || ev.Type != events.TypeStatusChanged || out.Reason == events.SkipUnmanaged {
		return out, err
	}
	at := ev.OccurredAt.Unix()
	ru.mu.Lock()
	prev, ok := ru.sim[ev.TicketID]
	ru.mu.Unlock()
	if ok {
		skip := func(reason string) events.Outcome {
			return events.Outcome{Result: events.ResultSkipped, Reason: reason, Event: out.Event}
		}
		switch {
		case at < prev.at:
			out = skip(events.SkipStatusStale)
		case ev.Status == prev.status:
			out = skip(events.SkipStatusUnchanged)
		case ev.Status == "new":
			out = skip(events.SkipStatusInitial)
		case out.Result == events.ResultSkipped:
			seen, err := ru.r.pub.Ledger().Seen(ctx, ev.ID)
			if err != nil {
				return out, err
			}
			if seen {
				out = events.Outcome{Result: events.ResultDuplicate, Reason: "ledger", Event: out.Event}
			} else {
				out = events.Outcome{Result: events.ResultEnqueued, Event: out.Event}
			}
		}
	}
	next, set := prev, false
	switch {
	case out.Result == events.ResultEnqueued:
		next, set = simStatus{ev.Status, at}, true
	case out.Reason == events.SkipStatusUnchanged && at > prev.at:
		next, set = simStatus{ev.Status, at}, true
	case out.Reason == events.SkipStatusInitial:
		next, set = simStatus{ev.Status, at}, true
	}
	if set {
		ru.mu.Lock()
		ru.sim[ev.TicketID] = next
		ru.mu.Unlock()
	}
	return out, nil
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
