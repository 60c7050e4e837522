// Package zendesk is deskrelay's client for the Zendesk Support API
// (https://developer.zendesk.com/api-reference/): tickets, comments, audits,
// incremental exports, webhooks and their invocations, legacy targets and
// users. It is built on resty with resty's own retries off: deskrelay's
// queues retry.
//
// New checks its Config; its errors are *validate.FieldError naming the Config field.
// Authentication is an API token (basic "{email}/token:{token}"), a fixed
// OAuth token, or a TokenSource whose token is refreshed once and the request
// retried once after a 401. Every request has its own timeout (Config.Timeout)
// and never follows redirects.
//
// Every non-2xx response and every transport failure becomes a *Error, built
// in one function (checkResponse in errors.go), whose Kind tells the caller
// what to do next: retry later (KindTemporary; Error.Ambiguous says whether a
// write may already have been applied), wait Error.RetryAfter
// (KindRateLimited), stop because the account is no longer authorized
// (KindUnauthorized), handle a missing resource (KindNotFound) or a
// validation failure (KindUnprocessable; Error.Closed for a closed ticket),
// or give up (KindInvalid). Error strings never hold credentials.
//
// Every request belongs to a rate-limit family (Classify, the one table in
// family.go): the account's budget, or an endpoint budget such as Update
// Ticket's, the incremental exports' or the Webhooks API's, which may or
// may not also spend the account's. Every response's rate-limit headers, in
// each form Zendesk has used, are read (ParseRateLimits), attributed to the
// family they belong to and handed to Config.OnResponse with the status,
// failures included, so that a limiter can throttle each family on its own.
// Error.Closed and Error.CommentLimit single out the two 422s after which a
// ticket takes no more comments. docs/zendesk.md lists what the package
// relies on, with sources.
//
// List methods follow both of Zendesk's paging styles (next_page, and
// cursor paging with meta.has_more/links.next), only ever on the configured
// base URL. EachTicketEventsPage walks the incremental ticket events export
// to its end, dropping events repeated at page boundaries.
//
// Sign and VerifySignature implement Zendesk's webhook signature.
//
// The package knows nothing of queues or Redis: it must not import asynq,
// go-redis or any other deskrelay package. Its tests use httptest servers of
// their own; zendesk/zendesktest (the fake Zendesk) is a separate package.
package zendesk
