// Package reconcile finds the Zendesk updates that the webhook path did not
// deliver and delivers them the same way (the same sink.Publisher, its
// ledger and forward rules), and keeps the webhook (or legacy target) that
// calls deskrelay switched on. docs/ARCHITECTURE.md shows where it sits.
//
// Which file answers which question:
//
//	reconciler.go   what the Reconciler needs (Deps and the small interfaces: Zendesk,
//	                Publisher, Receiver, SecretRefresher, …) and New
//	config.go       its settings: Config, InvocationsConfig, defaults, validation
//	run.go          a run's lifecycle: RunOnce (lease, guardian, scan, report) and Backfill
//	lease.go        the scheduled run's lease in Redis (one run at a time)
//	checkpoint.go   where the next scheduled run starts: the export's checkpoint, the
//	                invocations' checkpoint and the guardian's rewind (read/advance/rewind)
//	scan.go         one scan: invocations first, then the export; counting each event's
//	                outcome, and a dry run's simulation
//	export.go       the incremental ticket events export walk, page by page, ticket by ticket
//	invocations.go  recovery of failed webhook calls from their stored payloads, step by step
//	users.go        who wrote a comment (cached user lookups)
//	ratelimit.go    calling Zendesk under the export's limit, the shared limiter, 429s, retries
//	guardian.go     the webhook/target watch: status, re-enable (a target always, a webhook
//	                on demand or with Config.WebhookAutoEnable), an inactive webhook
//	                reported, the gap to cover
//	evidence.go     Zendesk's record of calls deskrelay answered 401 (a wrong secret): what
//	                stops re-activation, and the secret read again (SecretRefresher)
//	breaker.go      the early warning before Zendesk's circuit breaker trips
//	breakerwatch.go that warning every minute between runs, one replica per slot
//	schedule.go     the asynq tasks: their payload (the account), task ids, Register,
//	                ScheduleAll (every account's runs and checks on one timer)
//	slots.go        the spread: each account's slots shifted by SlotOffset (its name's
//	                hash), the breaker slots half a slot from the run's; the one timer
//	status.go       what /v1/status shows
//	report.go       what a run did (Report, InvocationsReport) and its summary for people
//	window.go       the --since/--until window of a backfill
//	metrics.go      Prometheus metrics
//
// One Reconciler serves one Zendesk account (Deps.Space): its lease,
// checkpoints, rewind, export limiter, guardian state and last run are the
// account's keys, its tasks carry the account in their payload, and its
// metric series the label "account". Package main builds one per account.
//
// Scheduled work happens on one replica per time slot: every replica
// enqueues the slot's task under the same asynq task id (asynq keeps one),
// and a run also holds the lease, so runs never overlap. The accounts'
// slots are spread over the interval (slots.go).
//
// It imports relay (queue names, the ticket record), internal/events,
// internal/keys and zendesk; it must not import inbound or package main.
package reconcile
