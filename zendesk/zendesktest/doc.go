// Package zendesktest is a faithful fake Zendesk for tests, benchmarks and the
// demo: an HTTP server that speaks the Zendesk Support API as
// docs/zendesk.md documents it (tickets, comments, audits, users,
// incremental exports, webhooks and their invocations, legacy targets, OAuth
// token refresh), keeps its state in memory, records every request, and lets a
// test script failures: outages (Down), injected statuses (FailNext), latency,
// responses lost after the write was applied (LoseNext, LoseResponses),
// revoked credentials, rate limits with Retry-After, Zendesk-side webhook
// incidents (DropWebhooks), duplicate deliveries, and invocations that end
// terminated or throttled (ScriptInvocations).
//
// Typical use:
//
//	srv := zendesktest.NewServer(t, zendesktest.Config{ExportLag: -1})
//	hook := srv.AddWebhook(receiverURL, secret, zendesktest.EventCommentAdded, zendesktest.EventStatusChanged)
//	id := srv.CreateTicket(zendesk.NewTicket{...})   // or POST /api/v2/tickets through the client
//	srv.AgentReply(id, "On it", true, "pending")     // the webhook is called before this returns
//	srv.Comments(id); srv.Invocations(hook); srv.CountRequests("PUT", "/api/v2/tickets/")
//
// Agent actions (AgentComment, AgentReply, SetStatus, EndUserComment) change
// tickets like a person in Zendesk's UI would, write audits and incremental
// events, and synchronously call the active webhooks (signed, with Zendesk's
// retry rules and circuit breaker) and legacy targets (deactivated after 21
// consecutive failures). Changes made through the API notify only with
// Config.NotifyAPIWrites.
//
// With NewServer, a request to a path the fake does not serve fails the test.
// Start gives the same server outside tests; cmd/fakezendesk serves it on a
// fixed address.
//
// The fake speaks raw HTTP/JSON on purpose: it imports package zendesk only
// for its types and Sign, never its client, so that the client's bugs are
// caught rather than mirrored. It must not import any other deskrelay package,
// nor package testing: the deskrelay binary links it for `deskrelay demo`
// (NewServer takes the small TB interface that *testing.T satisfies).
package zendesktest
