// Package keys builds every Redis key of deskrelay's own. All of them start
// with "deskrelay:" and are listed here, in one place, so that an operator
// can see what deskrelay keeps and nobody invents a key elsewhere. (asynq's
// own keys start with "asynq:" and are asynq's business.)
//
// It must not import any other deskrelay package.
package keys

import (
	"strconv"
)

// Prefix starts every key of deskrelay's own.
const Prefix = "deskrelay:"

// ---- outbound (relay) ----

// Message is the hash holding one message's record and status, by message id.
func Message(id string) string { return Prefix + "msg:" + id }

// ConversationTicket is the string holding the ticket id of a conversation.
func ConversationTicket(conversationID string) string {
	return Prefix + "conv:" + conversationID + ":ticket"
}

// TicketConversation is the string holding the conversation of a ticket that
// deskrelay manages.
func TicketConversation(ticketID int64) string {
	return Prefix + "ticket:" + strconv.FormatInt(ticketID, 10) + ":conv"
}

// OwnComment marks a comment id that deskrelay itself wrote into Zendesk (no echo).
func OwnComment(commentID int64) string {
	return Prefix + "owncomment:" + strconv.FormatInt(commentID, 10)
}

// Failed is the sorted set of failed message ids (score: failure time) per queue.
func Failed(queue string) string { return Prefix + "failed:" + queue }

// ConversationPending is the sorted set of a conversation's messages not yet
// delivered or failed (member: message id, score: position).
func ConversationPending(conversationID string) string {
	return Prefix + "conv:" + conversationID + ":pending"
}

// ConversationOrder is the hash of a conversation's ordering state: "max"
// (highest position assigned), "next" (position expected next), "gap_since"
// (unix ms when the wait for a missing position began).
func ConversationOrder(conversationID string) string {
	return Prefix + "conv:" + conversationID + ":order"
}

// ConversationLock is the lock one relay worker holds while it writes a
// conversation into Zendesk.
func ConversationLock(conversationID string) string {
	return Prefix + "conv:" + conversationID + ":lock"
}

// TicketRequester is the string holding the requester (user id) of a ticket
// deskrelay created: the author of the comments it adds.
func TicketRequester(ticketID int64) string {
	return Prefix + "ticket:" + strconv.FormatInt(ticketID, 10) + ":requester"
}

// UserByExternalID caches the Zendesk user id of an end user known by
// external id only.
func UserByExternalID(externalID string) string { return Prefix + "user:ext:" + externalID }

// OutboundGate is the hash of the outbound outage gate ("state", "since",
// "failures").
const OutboundGate = Prefix + "gate:outbound"

// OutboundCredentials is the hash of what the outbound relay last saw of
// the Zendesk credentials ("state": ok | unauthorized, "since").
const OutboundCredentials = Prefix + "credentials:outbound"

// RateLimitBucket is the GCRA state of one rate-limit bucket ("account",
// "ticket:<id>").
func RateLimitBucket(name string) string { return RateLimiter + name }

// RateLimitPause holds the time (unix ms) until which every replica stops
// calling Zendesk (Retry-After, X-Rate-Limit-Remaining exhausted).
const RateLimitPause = RateLimiter + "pause"

// ---- shared ----

// RateLimiter prefixes the shared Zendesk rate limiter's keys (budget.Limiter:
// GCRA buckets and the account-wide pause).
const RateLimiter = Prefix + "ratelimit:"

// ---- inbound ----

// EventLedger marks a sink event id as seen (dedupe), with a retention of days.
func EventLedger(eventID string) string { return Prefix + "ledger:" + eventID }

// InvocationLedger marks a Zendesk webhook invocation id as processed
// (X-Zendesk-Webhook-Invocation-Id), with the same retention as EventLedger.
func InvocationLedger(invocationID string) string { return Prefix + "ledger:inv:" + invocationID }

// TicketLastStatus is the hash of the last status forwarded to the sink for
// a ticket ("status", "at" unix seconds of the newest change seen).
func TicketLastStatus(ticketID int64) string {
	return Prefix + "ticket:" + strconv.FormatInt(ticketID, 10) + ":laststatus"
}

// InboundOrder is the sorted set of a conversation's sink events not yet
// delivered or failed (member: event id, score: occurred_at unix ms): the
// head goes first.
func InboundOrder(conversationID string) string {
	return Prefix + "inbound:order:" + conversationID
}

// InboundFailedEvent is the hash keeping a sink event that failed for good
// ("event" JSON, "reason", "error", "failed_at"); its id is in Failed("inbound").
func InboundFailedEvent(eventID string) string { return Prefix + "inbound:failed:" + eventID }

// WebhookLastReceived holds when a verified webhook last arrived (unix ms).
const WebhookLastReceived = Prefix + "inbound:webhook:last_received"

// WebhookSignatureFailures is the hash of the current run of webhook
// signature failures ("run": count since the last good signature,
// "first_at", "last_at" unix ms); absent when the last signature was good.
const WebhookSignatureFailures = Prefix + "inbound:webhook:signature_failures"

// ---- reconcile ----

// ReconcileCheckpoint is the scheduled reconciler's checkpoint (unix seconds).
const ReconcileCheckpoint = Prefix + "reconcile:checkpoint"

// ReconcileLease is the lease that lets one replica run the reconciler.
const ReconcileLease = Prefix + "reconcile:lease"

// ReconcileRewind holds a start time (unix seconds) that the next scheduled
// reconcile run must go back to (a gap the guardian found); the run removes
// it once it has covered it.
const ReconcileRewind = Prefix + "reconcile:rewind"

// ReconcileExportRequests is the sorted set of recent incremental export
// requests (score: unix µs), the export's own rate limit shared by replicas.
const ReconcileExportRequests = Prefix + "reconcile:export:requests"

// ReconcileGuardian is the hash of the webhook guardian's last check
// ("state" JSON) and its counters ("reenables", "last_reenable").
const ReconcileGuardian = Prefix + "reconcile:guardian"

// ReconcileLastRun holds the last scheduled reconcile run's report (JSON).
const ReconcileLastRun = Prefix + "reconcile:last_run"

// ReconcileInvocationsCheckpoint is the scheduled reconciler's checkpoint
// in the webhook's invocations (unix seconds of latest_completed_at): every
// non-success invocation completed before it has been recovered.
const ReconcileInvocationsCheckpoint = Prefix + "reconcile:invocations:checkpoint"

// ---- Zendesk OAuth (internal/zdoauth) ----

// OAuthToken is the hash holding a Zendesk account's OAuth state, shared by
// all replicas: "access" (current access token), "expiry" (unix ms, 0 for
// none), "expires_in" (seconds), "refresh" (current refresh token),
// "refreshed_at" and "last_error_at" (unix ms), "last_error", "rejected" (a
// hash of the credentials the token endpoint rejected), "seq" (bumped on
// every refresh outcome) and one "cfg:<sha256>" field per refresh token ever
// configured (its value: when, unix ms). account is "default" unless several
// Zendesk accounts are configured.
func OAuthToken(account string) string { return Prefix + "oauth:" + account + ":token" }

// OAuthRefreshLock is the lock held by the one replica that is refreshing an
// account's access token (value: a random owner id; PX-bounded).
func OAuthRefreshLock(account string) string { return Prefix + "oauth:" + account + ":lock" }
