// Package budget is deskrelay's Zendesk request budget, shared by every
// replica and every flow: Limiter (GCRA buckets in Redis plus pauses set by
// Zendesk's own answers, per rate-limit family: an endpoint family's limit
// throttles that family alone, the account's throttles every call; see
// docs/zendesk.md, "Families") and the one way to call Zendesk within it,
// Call (or Take then Pause429 for callers that make the request
// themselves), told the call's family by Options.Family. Rate is a setting's
// value: a number a minute, or a share of the limit Zendesk reports, which
// the Limiter learns from the headers (Observe) and shares through Redis.
// Callers choose how long they wait inline (Options); beyond that they get
// a *SpentError and decide themselves (relay and inbound answer
// queues.Wait, the reconciler waits).
//
// It imports zendesk and internal/keys only; it must not import queues,
// relay, inbound, reconcile or package main.
package budget
