// Package keys builds every Redis key of deskrelay's own. All of them start
// with "deskrelay:" and are listed here, in one place, so that an operator
// can see what deskrelay keeps and nobody invents a key elsewhere. (asynq's
// own keys start with "asynq:" and are asynq's business.)
//
// Every key belongs to one Zendesk account and carries the account's name as
// its Redis Cluster hash tag: deskrelay:{acme}:msg:42. All of one account's
// keys therefore live in one hash slot, so that a Lua script or transaction
// may touch any of them together (a message's record, its conversation's
// order and the failed set), while different accounts spread over a
// cluster's nodes. docs/ARCHITECTURE.md lists the keys by owner.
//
// Ids that end up in keys (message, conversation, event ids) never contain
// '{' or '}': intake refuses them, so a key's hash tag is always its account.
//
// It must not import any other deskrelay package.
package keys

import (
	"strconv"
)

// Prefix starts every key of deskrelay's own.
const Prefix = "deskrelay:"

// DefaultAccount is the account of a single-account deployment (the
// DESKRELAY_ZENDESK_* settings).
const DefaultAccount = "default"

// Space builds the keys of one Zendesk account. The zero Space is not
// usable; get one from For.
type Space struct {
	account string
	prefix  string // deskrelay:{account}:
}

// For returns the key space of account.
func For(account string) Space {
	return Space{account: account, prefix: Prefix + "{" + account + "}:"}
}

// Default is the key space of the account "default".
var Default = For(DefaultAccount)

// Account is the name of the account the keys belong to.
func (s Space) Account() string { return s.account }

// Prefix starts every key of the account: deskrelay:{account}:.
func (s Space) Prefix() string { return s.prefix }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// ---- outbound (relay) ----

// Message is the hash holding one message's record and status, by message id.
func (s Space) Message(id string) string { return s.prefix + "msg:" + id }

// ConversationTicket is the string holding the ticket id of a conversation.
func (s Space) ConversationTicket(conversationID string) string {
	return s.prefix + "conv:" + conversationID + ":ticket"
}

// TicketConversation is the string holding the conversation of a ticket that
// deskrelay manages.
func (s Space) TicketConversation(ticketID int64) string {
	return s.prefix + "ticket:" + itoa(ticketID) + ":conv"
}

// OwnComment marks a comment id that deskrelay itself wrote into Zendesk (no echo).
func (s Space) OwnComment(commentID int64) string {
	return s.prefix + "owncomment:" + itoa(commentID)
}

// Failed is the sorted set of failed message ids (score: failure time) per queue.
func (s Space) Failed(queue string) string { return s.prefix + "failed:" + queue }

// ConversationPending is the sorted set of a conversation's messages not yet
// delivered or failed (member: message id, score: position).
func (s Space) ConversationPending(conversationID string) string {
	return s.prefix + "conv:" + conversationID + ":pending"
}

// ConversationOrder is the hash of a conversation's ordering state: "max"
// (highest position assigned), "next" (position expected next), "gap_since"
// (unix ms when the wait for a missing position began).
func (s Space) ConversationOrder(conversationID string) string {
	return s.prefix + "conv:" + conversationID + ":order"
}

// ConversationLock is the lock one relay worker holds while it writes a
// conversation into Zendesk.
func (s Space) ConversationLock(conversationID string) string {
	return s.prefix + "conv:" + conversationID + ":lock"
}

// TicketRequester is the string holding the requester (user id) of a ticket
// deskrelay created: the author of the comments it adds.
func (s Space) TicketRequester(ticketID int64) string {
	return s.prefix + "ticket:" + itoa(ticketID) + ":requester"
}

// UserByExternalID caches the Zendesk user id of an end user known by
// external id only.
func (s Space) UserByExternalID(externalID string) string {
	return s.prefix + "user:ext:" + externalID
}

// OutboundGate is the hash of the account's outbound outage gate ("state",
// "since", "failures").
func (s Space) OutboundGate() string { return s.prefix + "gate:outbound" }

// OutboundCredentials is the hash of what the outbound relay last saw of
// the account's Zendesk credentials ("state": ok | unauthorized, "since").
func (s Space) OutboundCredentials() string { return s.prefix + "credentials:outbound" }

// ---- the account's Zendesk budget (internal/budget) ----

// RateLimiter prefixes the shared Zendesk rate limiter's keys: GCRA buckets
// and the account-wide pause.
func (s Space) RateLimiter() string { return s.prefix + "ratelimit:" }

// RateLimitBucket is the GCRA state of one rate-limit bucket ("account",
// "updates", "ticket:<id>", or an endpoint family's).
func (s Space) RateLimitBucket(name string) string { return s.RateLimiter() + name }

// RateLimitPause holds the time (unix ms) until which every replica stops
// calling the account's Zendesk (Retry-After, X-Rate-Limit-Remaining
// exhausted).
func (s Space) RateLimitPause() string { return s.RateLimiter() + "pause" }

// ---- inbound and the sink ----

// EventLedger marks a sink event id as seen (dedupe), with a retention of days.
func (s Space) EventLedger(eventID string) string { return s.prefix + "ledger:" + eventID }

// InvocationLedger marks a Zendesk webhook invocation id as processed
// (X-Zendesk-Webhook-Invocation-Id), with the same retention as EventLedger.
func (s Space) InvocationLedger(invocationID string) string {
	return s.prefix + "ledger:inv:" + invocationID
}

// TicketLastStatus is the hash of the last status forwarded to the sink for
// a ticket ("status", "at" unix seconds of the newest change seen).
func (s Space) TicketLastStatus(ticketID int64) string {
	return s.prefix + "ticket:" + itoa(ticketID) + ":laststatus"
}

// InboundOrder is the sorted set of a conversation's sink events not yet
// delivered or failed (member: event id, score: occurred_at unix ms): the
// head goes first.
func (s Space) InboundOrder(conversationID string) string {
	return s.prefix + "inbound:order:" + conversationID
}

// InboundFailedEvent is the hash keeping a sink event that failed for good
// ("event" JSON, "reason", "error", "failed_at"); its id is in Failed("inbound").
func (s Space) InboundFailedEvent(eventID string) string {
	return s.prefix + "inbound:failed:" + eventID
}

// WebhookLastReceived holds when a verified webhook last arrived (unix ms).
func (s Space) WebhookLastReceived() string { return s.prefix + "inbound:webhook:last_received" }

// WebhookSignatureFailures is the hash of the current run of webhook
// signature failures ("run": count since the last good signature,
// "first_at", "last_at" unix ms); absent when the last signature was good.
func (s Space) WebhookSignatureFailures() string {
	return s.prefix + "inbound:webhook:signature_failures"
}

// ---- reconcile ----

// ReconcileCheckpoint is the scheduled reconciler's checkpoint (unix seconds).
func (s Space) ReconcileCheckpoint() string { return s.prefix + "reconcile:checkpoint" }

// ReconcileLease is the lease that lets one replica run the account's reconciler.
func (s Space) ReconcileLease() string { return s.prefix + "reconcile:lease" }

// ReconcileRewind holds a start time (unix seconds) that the next scheduled
// reconcile run must go back to (a gap the guardian found); the run removes
// it once it has covered it.
func (s Space) ReconcileRewind() string { return s.prefix + "reconcile:rewind" }

// ReconcileExportRequests is the sorted set of recent incremental export
// requests (score: unix µs), the export's own rate limit shared by replicas.
func (s Space) ReconcileExportRequests() string { return s.prefix + "reconcile:export:requests" }

// ReconcileGuardian is the hash of the webhook guardian's last check
// ("state" JSON) and its counters ("reenables", "last_reenable").
func (s Space) ReconcileGuardian() string { return s.prefix + "reconcile:guardian" }

// ReconcileLastRun holds the last scheduled reconcile run's report (JSON).
func (s Space) ReconcileLastRun() string { return s.prefix + "reconcile:last_run" }

// ReconcileInvocationsCheckpoint is the scheduled reconciler's checkpoint
// in the webhook's invocations (unix seconds of latest_completed_at): every
// non-success invocation completed before it has been recovered.
func (s Space) ReconcileInvocationsCheckpoint() string {
	return s.prefix + "reconcile:invocations:checkpoint"
}

// ---- Zendesk OAuth (internal/zdoauth) ----

// OAuthToken is the hash holding the account's OAuth state, shared by all
// replicas: "access" (current access token), "expiry" (unix ms, 0 for
// none), "expires_in" (seconds), "refresh" (current refresh token),
// "refreshed_at" and "last_error_at" (unix ms), "last_error", "rejected" (a
// hash of the credentials the token endpoint rejected), "seq" (bumped on
// every refresh outcome) and one "cfg:<sha256>" field per refresh token ever
// configured (its value: when, unix ms).
func (s Space) OAuthToken() string { return s.prefix + "oauth:token" }

// OAuthRefreshLock is the lock held by the one replica that is refreshing
// the account's access token (value: a random owner id; PX-bounded).
func (s Space) OAuthRefreshLock() string { return s.prefix + "oauth:lock" }

// ---- inbound receiver (p-inbound) ----

// WebhookReceiverState is the hash of the webhook receiver's state as serve
// last saw it ("state": on|waiting_for_secret|off, "last_error", "since"
// and "updated_at" in unix ms), for `deskrelay webhook status`.
func (s Space) WebhookReceiverState() string { return s.prefix + "inbound:webhook:receiver_state" }

// ---- rate-limit families (internal/budget) ----

// RateLimitFamilyBucket is the GCRA state of an endpoint family's own
// bucket (zendesk.Family: "tickets-update", "webhooks", …). The account's
// is RateLimitBucket("account").
func (s Space) RateLimitFamilyBucket(family string) string {
	return s.RateLimiter() + "family:" + family
}

// RateLimitFamilyPause holds the time (unix ms) until which every replica
// stops calling one endpoint family (its 429, its remaining exhausted). The
// account's is RateLimitPause.
func (s Space) RateLimitFamilyPause(family string) string {
	return s.RateLimiter() + "pause:" + family
}

// RateLimitFamilyLimit holds the per-minute limit Zendesk last reported for
// a family ("account" included), shared by the replicas; it expires a day
// after the last report.
func (s Space) RateLimitFamilyLimit(family string) string {
	return s.RateLimiter() + "limit:" + family
}

// ---- outbound parking (relay, p-relay-acct) ----

// OutboundParked is the sorted set of the account's outbound messages whose
// tasks wait off asynq's shared pending list (member: message id, score:
// unix ms when first parked): parked by the closed outage gate, the spent
// budget or a backlog, and released a budget's worth at a time.
func (s Space) OutboundParked() string { return s.prefix + "parked:outbound" }

// ---- the account's outbound backlog (relay) ----

// OutboundQueued is the sorted set of the account's messages accepted and
// neither delivered nor failed (member: message id, score: accepted_at in
// unix ms): the backlog's size and age in O(1), whatever the number of
// accounts sharing the asynq queue. Intake adds, delivery and failure
// remove, a replay adds again.
func (s Space) OutboundQueued() string { return s.prefix + "queued:outbound" }
