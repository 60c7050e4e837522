// Package events is deskrelay's model of the Zendesk events it forwards to
// the platform's sink, shared by the webhook receiver (inbound/) and the
// reconciler (reconcile/):
//
//   - Event: the sink delivery body of DESIGN.md "Sink deliveries", with
//     its stable id (CommentEventID, StatusEventID);
//   - ParsePayload: the two webhook bodies Zendesk sends (the
//     event-subscription envelope and deskrelay's documented trigger body,
//     TriggerBody), also for payloads recovered from webhook invocations;
//   - the forward rules, in one place (Publisher.Check): managed tickets
//     only, public agent comments only (unless ForwardPrivate), never a
//     comment deskrelay wrote itself, status changes only when newer than
//     and different from the last one delivered for the ticket (the half
//     of that rule that needs delivery order is Publisher.StatusGate, called
//     by the sink delivery task);
//   - Ledger: the dedupe record in Redis, keyed by event id (and by webhook
//     invocation id), kept for days;
//   - Publisher: rules + ledger + a durable asynq task on the "inbound"
//     queue (TaskDeliver), in an order that is safe against a crash at any
//     point: an event is marked seen only after its task exists.
//
// The sink delivery itself (TaskDeliver's handler) lives in inbound/.
//
// It imports relay (queue names, retry count, the ticket record) and
// internal/keys; it must not import inbound, reconcile or package main.
package events
