package inbound

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/zendesk"
)

// handleWebhookTask turns one received body into events and publishes them.
// Publishing is idempotent per event, so a retry after a partial run is safe;
// the invocation is marked in the ledger only after all its events.
func (r *Receiver) handleWebhookTask(ctx context.Context, t *asynq.Task) error {
	var rec received
	if err := json.Unmarshal(t.Payload(), &rec); err != nil {
		return fmt.Errorf("webhook task: corrupt payload: %w: %w", err, asynq.SkipRetry)
	}
	log := r.log.With().Str("kind", rec.Kind).Logger()
	if id, ok := asynq.GetTaskID(ctx); ok {
		log = log.With().Str("task_id", id).Logger()
	}
	if rec.InvocationID != "" {
		seen, err := r.pub.Ledger().InvocationSeen(ctx, rec.InvocationID)
		if err != nil {
			return err
		}
		if seen {
			r.m.events.WithLabelValues(string(events.ResultDuplicate), "invocation").Inc()
			return nil
		}
	}
	pl, err := events.ParsePayload(rec.Body, events.SourceWebhook)
	if err != nil {
		log.Error().Err(err).Msg("webhook body unreadable: dropped")
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if pl.Ignored {
		return nil
	}
	evs := pl.Events
	if pl.Comment != nil {
		ev, ok, err := r.resolveComment(ctx, pl, rec.ReceivedAt)
		if err != nil {
			return err
		}
		if ok {
			// the comment first: in one update, the reply comes before the status it sets
			evs = append([]events.Event{ev}, evs...)
		}
	}
	for _, ev := range evs {
		out, err := r.pub.Publish(ctx, ev)
		if err != nil {
			return fmt.Errorf("publish %s: %w", ev.ID, err)
		}
		r.m.events.WithLabelValues(string(out.Result), out.Reason).Inc()
		log.Debug().Str("event_id", ev.ID).Int64("ticket_id", ev.TicketID).
			Str("conversation_id", out.Event.ConversationID).Str("outcome", out.String()).Msg("webhook event")
	}
	if rec.InvocationID != "" {
		if err := r.pub.Ledger().MarkInvocation(ctx, rec.InvocationID); err != nil {
			return err
		}
	}
	return nil
}

// resolveComment reads a trigger body's comment through the API (after
// the rules that need no API call; sink.Publisher.ResolveComment).
func (r *Receiver) resolveComment(ctx context.Context, pl *events.Payload, receivedAt time.Time) (events.Event, bool, error) {
	if r.zd == nil {
		if pl.Comment != nil {
			r.log.Warn().Int64("ticket_id", pl.TicketID).Int64("comment_id", pl.Comment.ID).
				Msg("trigger body names a comment but no Zendesk client is configured: comment not forwarded")
		}
		return events.Event{}, false, nil
	}
	ev, reason, err := r.pub.ResolveComment(ctx, pl, commentReader{r}, events.SourceWebhook, receivedAt)
	if err != nil || ev == nil {
		if reason != "" {
			r.m.events.WithLabelValues(string(events.ResultSkipped), reason).Inc()
		}
		return events.Event{}, false, err
	}
	return *ev, true, nil
}

// commentReader reads through the receiver's Zendesk client, within the
// shared budget, with authors cached.
type commentReader struct{ r *Receiver }

func (c commentReader) Comments(ctx context.Context, ticketID int64) ([]zendesk.Comment, error) {
	cs, err := budget.Call(ctx, c.r.limiter, budget.Options{}, func(ctx context.Context) ([]zendesk.Comment, error) {
		return c.r.zd.ListComments(ctx, ticketID)
	})
	return cs, spent(err)
}

func (c commentReader) Author(ctx context.Context, userID int64) (events.Author, error) {
	return c.r.author(ctx, userID)
}

// spent asks asynq to come back when the shared Zendesk budget has a
// request again (not a failed attempt); the trigger path never waits inline.
func spent(err error) error {
	if d, ok := budget.Spent(err); ok {
		return queues.Wait(d, err)
	}
	return err
}

// author returns a comment author (RoleAgent for agents and admins), from
// a short-lived cache or the API, within the shared Zendesk budget; a
// deleted user is an end user.
func (r *Receiver) author(ctx context.Context, id int64) (events.Author, error) {
	return r.users.Author(ctx, id, func(ctx context.Context, id int64) (*zendesk.User, error) {
		zu, err := budget.Call(ctx, r.limiter, budget.Options{}, func(ctx context.Context) (*zendesk.User, error) {
			return r.zd.GetUser(ctx, id)
		})
		if err = spent(err); err != nil && !queues.IsWait(err) {
			return nil, fmt.Errorf("read user %d: %w", id, err)
		}
		return zu, err
	})
}
