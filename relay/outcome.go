package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/deskrelay/deskrelay/internal/sink"
)

// OutcomeSink is told what became of each message once its outcome is
// recorded (*sink.Outcomes, which publishes message.delivered and
// message.failed events to the platform's sink). It must drop an outcome it
// was told before: a task that finds its message finished (its earlier run
// ended between recording and telling: a crash, a Redis error) tells it
// again, so that none is lost.
type OutcomeSink interface {
	PublishOutcome(ctx context.Context, o sink.Outcome) error
}

// tellOutcome tells Deps.Outcomes the outcome f of rec, recorded at at (in
// generation rec.Gen). An error leaves the task to run again, and the
// run tells it again (retellOutcome).
func (r *Relay) tellOutcome(ctx context.Context, rec *record, f finish, at time.Time) error {
	if r.outcomes == nil {
		return nil
	}
	var o sink.Outcome
	switch f.state {
	case StateDelivered:
		o = sink.MessageDelivered(rec.ID, rec.Conv, f.ticketID, f.commentID, at)
	case StateFailed:
		o = sink.MessageFailed(rec.ID, rec.Conv, rec.Gen, f.reason, f.lastError, at)
	default:
		return nil
	}
	if err := r.outcomes.PublishOutcome(ctx, o); err != nil {
		return fmt.Errorf("tell the sink that message %s is %s: %w", rec.ID, f.state, err)
	}
	return nil
}

// retellOutcome tells the outcome of a message that a task of generation
// gen finds finished, from its record; nothing when the record is of
// another generation or not finished.
func (r *Relay) retellOutcome(ctx context.Context, rec *record, gen int64) error {
	if rec.Gen != gen {
		return nil
	}
	return r.tellOutcome(ctx, rec, finish{state: rec.State, ticketID: rec.TicketID, commentID: rec.CommentID,
		reason: rec.Reason, lastError: rec.LastError}, rec.DoneAt)
}
