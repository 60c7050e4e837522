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

// ---- shared ----

// RateLimiter is the prefix redis_rate uses for the shared Zendesk limiter.
const RateLimiter = Prefix + "ratelimit:"

// ---- inbound ----

// EventLedger marks a sink event id as seen (dedupe), with a retention of days.
func EventLedger(eventID string) string { return Prefix + "ledger:" + eventID }

// ---- reconcile ----

// ReconcileCheckpoint is the scheduled reconciler's checkpoint (unix seconds).
const ReconcileCheckpoint = Prefix + "reconcile:checkpoint"

// ReconcileLease is the lease that lets one replica run the reconciler.
const ReconcileLease = Prefix + "reconcile:lease"
