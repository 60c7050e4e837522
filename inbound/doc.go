// Package inbound is deskrelay's Zendesk → platform path:
//
//   - Receiver.Webhook (POST /v1/zendesk/webhook) verifies Zendesk's
//     signature, checks the body is readable, and makes it durable before
//     answering: an asynq task on the "inbound" queue, or — when Redis is
//     unreachable — a file in the spool directory (fsynced). Only when the
//     spool directory itself fails does it answer 503, which Zendesk counts
//     as a failed delivery. Receiver.Target (POST /v1/zendesk/target) takes
//     the same bodies from a legacy target (main wraps it in basic auth).
//   - Receiver.Run moves spooled requests into Redis, in order, once Redis
//     answers again (also after a restart).
//   - The TaskWebhook handler turns a received body into events
//     (internal/events), reading trigger-body comments through the Zendesk
//     API, and publishes them (rules, ledger, delivery task).
//   - The events.TaskDeliver handler POSTs each event to the sink, signed
//     with Standard Webhooks, in occurred_at order per conversation, retried
//     perpetually with the queues retry policy; 401/403/410 fail it for good, kept
//     for Replay.
//
// It imports internal/events, relay, zendesk and internal helpers; it must
// not import reconcile or package main.
package inbound
