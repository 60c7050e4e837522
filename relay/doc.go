// Package relay is deskrelay's outbound flow: it accepts the platform's
// messages (POST /v1/messages, or Enqueue for embedders), makes each one
// durable in Redis (deskrelay's own message record plus an asynq task on the
// "outbound" queue) and forwards it to Zendesk exactly once and in
// conversation order: the first message of a conversation creates a ticket,
// later ones add public comments authored by the requester. Once a
// message's outcome (delivered, failed) is recorded, it tells it to
// Deps.Outcomes (internal/sink's message outcome events; outcome.go).
//
// What it shares with the other flows lives in internal/queues (queue names,
// asynq server, retry policy), internal/budget (the shared Zendesk budget)
// and internal/tickets (the conversation <-> ticket record).
//
// It imports zendesk and internal packages only; it must not import inbound,
// reconcile or package main.
package relay
