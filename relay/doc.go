// Package relay is deskrelay's outbound flow: it accepts the platform's
// messages (POST /v1/messages, or Enqueue for embedders), makes each one
// durable in Redis (deskrelay's own message record plus an asynq task on the
// "outbound" queue) and forwards it to Zendesk exactly once and in
// conversation order: the first message of a conversation creates a ticket,
// later ones add public comments authored by the requester.
//
// It also holds what every queue shares: the asynq server (queues.go), the
// retry policy (retry.go), the Zendesk rate limiter shared by all replicas
// (limiter.go) and the record of which tickets and comments deskrelay
// manages and wrote (tickets.go).
//
// It imports zendesk and internal packages only; it must not import inbound,
// reconcile or package main.
package relay
