// Package events is deskrelay's model of the Zendesk events it forwards to
// the platform's sink, shared by the webhook receiver (inbound/), the
// reconciler (reconcile/) and the sink delivery (internal/sink):
//
//   - Event: the sink delivery body (docs/ARCHITECTURE.md), with its stable
//     id (CommentEventID, StatusEventID);
//   - ParsePayload: the two webhook bodies Zendesk sends (the
//     event-subscription envelope and deskrelay's documented trigger body,
//     TriggerBody), also for payloads recovered from webhook invocations;
//   - the vocabulary of the forward rules (Result, Outcome, the Skip…
//     reasons), which internal/sink applies when it publishes.
//
// It is a leaf: it imports zendesk only; it must not import asynq, Redis,
// relay, inbound, reconcile, internal/sink or package main.
package events
