// Package reconcile finds the Zendesk updates that the webhook path did not
// deliver and delivers them the same way, and keeps the webhook (or legacy
// target) that calls deskrelay switched on.
//
//   - Reconciler.RunOnce (the schedule) and Reconciler.Backfill (`deskrelay
//     reconcile --since`) read Zendesk's incremental ticket events export
//     page by page, derive the ticket.comment_added and
//     ticket.status_changed events of every ticket deskrelay manages, with
//     the same ids as the webhook path, and hand them to the same
//     sink.Publisher, whose ledger drops what was already delivered and
//     whose rules drop deskrelay's own comments. The scheduled checkpoint
//     moves only after a page's events are durable.
//   - Before the export, when a webhook is configured, the same run reads
//     the webhook's invocations (invocations.go) since their own checkpoint
//     (never more than Zendesk's 7 days back), takes the stored payload of
//     every one that did not succeed (failed, timeout, circuit broken, …)
//     and feeds it through events.ParsePayload and the same Publisher and
//     ledger (keyed by invocation id and event id), source "invocation".
//     Report.FromInvocations and Report.FromTicketEvents say which path
//     enqueued what.
//   - Reconciler.Register and Reconciler.Schedule run RunOnce every
//     Config.Interval inside `serve`, on one replica at a time: each replica
//     enqueues the same interval-slot task id on the "reconcile" queue
//     (asynq drops the duplicates), and the run holds a lease in Redis.
//   - Guardian checks the webhook's status (or the target's active flag),
//     re-activates it when Zendesk switched it off and deskrelay's receiver
//     is healthy, and makes the next run cover the gap. From the webhook's
//     invocations of the last 5 minutes it computes the failure ratio and
//     warns (WatchState.Breaker, log, metrics) before Zendesk's circuit
//     breaker trips (breaker.go).
//
// It imports relay (queue names, the ticket record), internal/events,
// internal/keys and zendesk; it must not import inbound or package main.
package reconcile
