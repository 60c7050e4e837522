// Package tickets is deskrelay's record of which Zendesk tickets belong to
// which conversation and which comments deskrelay wrote itself (Tickets).
// relay writes it; inbound and the reconciler read it to decide what to
// forward to the platform.
//
// It imports internal/keys only; it must not import relay, inbound,
// reconcile or package main.
package tickets
