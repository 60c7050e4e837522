// Package zendesktest is a faithful fake Zendesk for tests, benchmarks and the
// demo: an HTTP server that speaks the Zendesk Support API as
// /work/shared/ZENDESK.md documents it (tickets, comments, audits, users,
// incremental exports, webhooks and their invocations, legacy targets, OAuth
// token refresh), keeps its state in memory, records every request, and lets a
// test script failures: outages, injected statuses, latency, responses lost
// after the write was applied, revoked credentials, rate limits.
//
// Agent actions (AgentComment, SetStatus, EndUserComment) change tickets like
// an agent in Zendesk's UI would and synchronously call the configured
// webhooks (signed, with Zendesk's retry rules and circuit breaker) and legacy
// targets (with the 21-consecutive-failures rule).
//
// The fake speaks raw HTTP/JSON on purpose: it imports package zendesk only
// for its types and Sign, never its client, so that the client's bugs are
// caught rather than mirrored. It must not import any other deskrelay package.
package zendesktest
