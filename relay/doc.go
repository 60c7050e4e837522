// Package relay is deskrelay's outbound flow: it accepts the platform's
// messages (POST /v1/messages, or Enqueue for embedders), makes each one
// durable in Redis (deskrelay's own message record plus an asynq task on the
// "outbound" queue) and forwards it to Zendesk exactly once and in
// conversation order: the first message of a conversation creates a ticket,
// later ones add public comments authored by the requester. Once a
// message's outcome (delivered, failed) is recorded, it tells it to
// Deps.Outcomes (internal/sink's message outcome events; outcome.go).
//
// Accounts. A Relay serves one Zendesk account (Deps.Space, Deps.Limiter,
// Deps.Zendesk); main builds one per account, sharing the Redis client, the
// asynq client and inspector and the metrics registry. Every key comes from
// the account's keys.Space. POST /v1/messages and GET /v1/messages/{id}
// (PostMessage, GetMessage) pick the account's Relay by the message's
// "account" (the query's ?account=); none is "default".
//
// Tasks. All accounts share asynq's queue "outbound"; a task's payload
// names its account ("account", left out for "default", so that tasks of
// the previous release, which carry none, are the default account's), and
// main's dispatcher hands it to that account's handlers (Register). Task
// ids:
//
//	message                 msg{<id>}                (account "default")
//	                        msg{<account>}{<id>}     (any other account)
//	replay generation       replay{<id>}{<gen>}      (account "default")
//	                        replay{<account>}{<id>}{<gen>}
//	outage gate probe       outbound-gate-probe, outbound-gate-probe{<account>}
//	credentials probe       outbound-credential-probe, outbound-credential-probe{<account>}
//	release of parked work  outbound-gate-release:<ms>, outbound-gate-release{<account>}:<ms>
//
// Message ids and account names hold no braces, so no id can stand for
// another message's or another account's. The previous release's msg:<id>
// tasks (default account) still run.
//
// Isolation. One account's outage, revoked credentials, spent budget or
// backlog never stands in the shared pending list in front of another
// account's messages: its tasks park off the list (park.go) and are
// released a budget's worth at a time.
//
// What it shares with the other flows lives in internal/queues (queue names,
// asynq server, retry policy), internal/budget (the shared Zendesk budget)
// and internal/tickets (the conversation <-> ticket record).
//
// It imports zendesk and internal packages only; it must not import inbound,
// reconcile or package main.
package relay
