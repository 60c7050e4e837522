package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is what one run (scheduled or Backfill) did.
type Report struct {
	// Account is the Zendesk account the run read (Deps.Space).
	Account string `json:"account,omitempty"`
	// Window is the span read: Since inclusive, Until exclusive.
	Window Window `json:"window"`
	// DryRun is true for Backfill with Options.DryRun: nothing was written.
	DryRun bool `json:"dry_run,omitempty"`
	// Complete is true when the whole window was read.
	Complete bool `json:"complete"`
	// Pages is the number of export pages read.
	Pages int `json:"pages"`
	// TicketEvents is the number of export items (audits) in the window.
	TicketEvents int `json:"ticket_events"`
	// TicketsScanned is the number of distinct tickets seen.
	TicketsScanned int `json:"tickets_scanned"`
	// TicketsSkipped is the number of those that deskrelay does not manage.
	TicketsSkipped int `json:"tickets_skipped"`
	// EventsFound is the number of comment and status events derived on
	// managed tickets: Enqueued + AlreadyDelivered + the Filtered ones.
	EventsFound int `json:"events_found"`
	// AlreadyDelivered is the number the ledger already had (the webhook
	// delivered them, or an earlier run did).
	AlreadyDelivered int `json:"already_delivered"`
	// Enqueued is the number handed to the sink now (in a dry run: that
	// would be).
	Enqueued int `json:"enqueued"`
	// FromInvocations and FromTicketEvents split Enqueued by where the
	// event was found: a failed or circuit-broken webhook invocation's
	// stored payload, or the incremental ticket events export.
	FromInvocations  int `json:"from_invocations"`
	FromTicketEvents int `json:"from_ticket_events"`
	// Invocations is what the run read of the webhook's invocations (nil
	// when no webhook is configured).
	Invocations *InvocationsReport `json:"invocations,omitempty"`
	// Filtered counts the events the forward rules drop, by reason
	// (own_comment, end_user, private, stale_status, unchanged_status,
	// initial_status).
	Filtered map[string]int `json:"filtered,omitempty"`
	// ZendeskRequests is the number of Zendesk API requests made.
	ZendeskRequests int `json:"zendesk_requests"`
	// RateLimited is the number of 429 answers among them.
	RateLimited int `json:"rate_limited"`
	// RateLimitWait is the time spent waiting on rate limits (the export's
	// own, the shared account limiter, 429 Retry-After).
	RateLimitWait time.Duration `json:"-"` // JSON: rate_limit_wait_seconds
	// Checkpoint is where the scheduled checkpoint stands after the run
	// (zero for Backfill).
	Checkpoint time.Time `json:"checkpoint,omitzero"`
	// StartedAt and Duration time the run.
	StartedAt time.Time     `json:"started_at"`
	Duration  time.Duration `json:"-"` // JSON: duration_seconds
	// Errors lists what went wrong; the run stopped at the first one.
	Errors []string `json:"errors,omitempty"`
}

// reportJSON is Report as JSON (/v1/status, `reconcile --json`, the last
// run kept in Redis): durations in seconds, in fields named *_seconds
// (README, "Status JSON").
type reportJSON struct {
	plainReport
	RateLimitWaitSeconds float64 `json:"rate_limit_wait_seconds"`
	DurationSeconds      float64 `json:"duration_seconds"`
}

type plainReport Report

// MarshalJSON writes the durations as *_seconds numbers.
func (r Report) MarshalJSON() ([]byte, error) {
	return json.Marshal(reportJSON{plainReport(r), r.RateLimitWait.Seconds(), r.Duration.Seconds()})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (r *Report) UnmarshalJSON(b []byte) error {
	var v reportJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Report(v.plainReport)
	r.RateLimitWait = seconds(v.RateLimitWaitSeconds)
	r.Duration = seconds(v.DurationSeconds)
	return nil
}

// seconds is the inverse of time.Duration.Seconds.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Filtered total.
func (r Report) filteredTotal() int {
	n := 0
	for _, v := range r.Filtered {
		n += v
	}
	return n
}

// WriteSummary prints the report for people, as `deskrelay reconcile` ends.
func (r Report) WriteSummary(w io.Writer) {
	verb := "enqueued now"
	if r.DryRun {
		verb = "would be enqueued (dry run: nothing changed)"
	}
	state := "complete"
	if !r.Complete {
		state = "INCOMPLETE"
	}
	if r.Account != "" {
		fmt.Fprintf(w, "account           %s\n", r.Account)
	}
	fmt.Fprintf(w, "window            %s .. %s (%s)\n", r.Window.Since.Format(time.RFC3339), r.Window.Until.Format(time.RFC3339), state)
	fmt.Fprintf(w, "pages read        %d (%d ticket events)\n", r.Pages, r.TicketEvents)
	fmt.Fprintf(w, "tickets scanned   %d, skipped as not ours %d\n", r.TicketsScanned, r.TicketsSkipped)
	fmt.Fprintf(w, "events found      %d\n", r.EventsFound)
	fmt.Fprintf(w, "already delivered %d\n", r.AlreadyDelivered)
	fmt.Fprintf(w, "%-17s %d\n", verb, r.Enqueued)
	fmt.Fprintf(w, "  from invocations %d, from ticket events %d\n", r.FromInvocations, r.FromTicketEvents)
	if r.Invocations != nil {
		fmt.Fprintf(w, "invocations       %s\n", r.Invocations.Summary())
	}
	if n := r.filteredTotal(); n > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Filtered)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Filtered[k]))
		}
		fmt.Fprintf(w, "not forwarded     %d (%s)\n", n, strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "zendesk requests  %d (%d answered 429), waited %s on rate limits\n", r.ZendeskRequests, r.RateLimited, r.RateLimitWait.Round(time.Millisecond))
	fmt.Fprintf(w, "took              %s\n", r.Duration.Round(time.Millisecond))
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error             %s\n", e)
	}
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

// saveLastRun records a scheduled run's report for /v1/status (Status.LastRun).
func (r *Reconciler) saveLastRun(rep Report) {
	b, err := json.Marshal(rep)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.rdb.Set(ctx, r.space.ReconcileLastRun(), b, 0).Err(); err != nil {
		r.log.Warn().Err(err).Msg("save last reconcile run")
	}
}
