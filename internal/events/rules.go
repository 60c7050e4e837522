package events

// Result is what Publish did with an event.
type Result string

// Results of Publish and Check.
const (
	ResultEnqueued  Result = "enqueued"  // a delivery task now exists (Check: would be enqueued)
	ResultDuplicate Result = "duplicate" // the ledger or an existing task already has it
	ResultSkipped   Result = "skipped"   // a forward rule says no; Outcome.Reason says which
)

// Reasons for ResultSkipped.
const (
	SkipUnmanaged       = "unmanaged"        // deskrelay does not manage the ticket
	SkipOwnComment      = "own_comment"      // deskrelay wrote the comment itself (no echo)
	SkipEndUser         = "end_user"         // an end user's (requester's) comment
	SkipPrivate         = "private"          // a private note, and ForwardPrivate is off
	SkipStatusStale     = "stale_status"     // older than the newest status change seen for the ticket
	SkipStatusUnchanged = "unchanged_status" // the same status as the last one forwarded
	SkipStatusInitial   = "initial_status"   // "new": a ticket's creation, not a change
)

// Outcome is the result of publishing (or checking) one event.
type Outcome struct {
	Result Result
	Reason string // for ResultSkipped (Skip…) and ResultDuplicate ("ledger", "task")
	// Event is the event as published, with ConversationID filled in.
	Event Event
}

func (o Outcome) String() string {
	if o.Reason == "" {
		return string(o.Result)
	}
	return string(o.Result) + ": " + o.Reason
}
