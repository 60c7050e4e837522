// Package zendesk is deskrelay's client for the Zendesk Support API
// (https://developer.zendesk.com/api-reference/): tickets, comments, audits,
// incremental exports, webhooks, legacy targets and users.
//
// Every non-2xx response and every transport failure becomes a *Error whose
// Kind tells the caller what to do next (retry later, wait for the rate limit,
// stop because the account is no longer authorized, or give up).
//
// The package knows nothing of queues or Redis: it must not import asynq,
// go-redis or any other deskrelay package.
package zendesk
