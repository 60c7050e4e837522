// Package sink is the one home of deliveries to the platform's sink,
// asynq style: the task type (TaskDeliver, DeliverTaskID, DeliverPayload),
// its constructor (Publisher: forward rules, dedupe Ledger, a durable task
// on the "inbound" queue and the conversation's delivery order, in an order
// safe against a crash at any point), its handler (Deliverer.ProcessTask:
// POST signed with Standard Webhooks, in occurred_at order per
// conversation, retried with the queues policy), and the archive of events
// the sink refused for good (Failed, Replay).
//
// Besides Zendesk's ticket events it delivers message outcome events
// (message.failed, message.delivered: Outcome), published by Outcomes when
// the relay records a message's outcome. They travel in the same task type
// with the same signing, retries and archive, but in no conversation's
// order (see Outcomes).
//
// Every write of the event ledger (keys.EventLedger) goes through Ledger,
// every write of a conversation's order (keys.InboundOrder) through
// order.go.
//
// It imports internal/events, internal/queues, internal/tickets,
// internal/keys, internal/promx and zendesk; it must not import relay,
// inbound, reconcile or package main.
package sink
