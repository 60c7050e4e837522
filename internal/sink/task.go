package sink

import (
	"time"

	"github.com/deskrelay/deskrelay/internal/events"
)

// TaskDeliver is the asynq task type that delivers one Event to the sink
// (payload DeliverPayload, queue queues.Inbound, id DeliverTaskID);
// its handler is Deliverer.ProcessTask.
const TaskDeliver = "inbound:deliver"

// DefaultTaskTimeout bounds one delivery attempt.
const DefaultTaskTimeout = time.Minute

// DeliverTaskID is the asynq task id of an event's delivery: at most one
// such task exists at a time.
func DeliverTaskID(eventID string) string { return "deliver:" + eventID }

// DeliverPayload is the payload of a TaskDeliver task: a ticket event
// (Event), or a message outcome (Outcome, when set).
// Account is the account whose keys (ledger, order, archive) the delivery
// uses; "" (a task of the previous release) is the default account.
type DeliverPayload struct {
	Account     string       `json:"account,omitempty"`
	Event       events.Event `json:"event"`
	Outcome     *Outcome     `json:"outcome,omitempty"`
	PublishedAt time.Time    `json:"published_at"`
}
