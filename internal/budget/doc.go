// Package budget is the account's Zendesk request budget, shared by every
// replica and every flow: Limiter (a GCRA bucket in Redis plus an
// account-wide pause set by Zendesk's own answers) and the one way to call
// Zendesk within it, Call (or Take then Pause429 for callers that make the
// request themselves). Callers choose how long they wait inline (Options);
// beyond that they get a *SpentError and decide themselves (relay and
// inbound answer queues.Wait, the reconciler waits).
//
// It imports zendesk and internal/keys only; it must not import queues,
// relay, inbound, reconcile or package main.
package budget
