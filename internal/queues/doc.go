// Package queues is what every deskrelay queue shares: the queue names
// (Outbound, Inbound, Reconcile), the asynq server that runs them all
// (NewServer) and the one retry policy (retry.go: Policy.RetryDelay,
// IsFailure, Wait, Fail, MaxRetry), pinned by TestRetryPolicy and copied in
// the README's "Retry semantics".
//
// It imports zendesk (to read an error's kind) and internal/logging only; it
// must not import relay, inbound, reconcile, package main or another
// internal package that does.
package queues
