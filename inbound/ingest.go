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

// handleWebhookTask turns one received body into events and publishes them
// as the events of the account the payload names (none: the default, a
// task or spool record of the previous release). Publishing is idempotent
// per event, so a retry after a partial run is safe; the invocation is
// marked in the ledger only after all its events.
func (r *Receiver) handleWebhookTask(ctx context.Context, t *asynq.Task) error {
	var rec received
	if err := json.Unmarshal(t.Payload(), &rec); err != nil {
		return fmt.Errorf("webhook task: corrupt payload: %w: %w", err, asynq.SkipRetry)
	}
	a := r.lookup(rec.Account)
	if a == nil {
		return fmt.Errorf("webhook task: account %q is not configured (retried: it may be added again)", events.AccountOf(rec.Account))
	}
	return a.ingest(ctx, rec)
}

// ingest publishes the events of one received body of the account.
func (a *account) ingest(ctx context.Context, rec received) error {
	r := a.r
	log := a.log.With().Str("kind", rec.Kind).Logger()
	if id, ok := asynq.GetTaskID(ctx); ok {
		log = log.With().Str("task_id", id).Logger()
	}
	if rec.InvocationID != "" {
		seen, err := a.pub.Ledger().InvocationSeen(ctx, rec.InvocationID)
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
		ev, ok, err := a.resolveComment(ctx, pl, rec.ReceivedAt)
		if err != nil {
			return err
		}
		if ok {
			// the comment first: in one update, the reply comes before the status it sets
			evs = append([]events.Event{ev}, evs...)
		}
	}
	for _, ev := range evs {
		out, err := a.pub.Publish(ctx, ev)
		if err != nil {
			return fmt.Errorf("publish %s: %w", ev.ID, err)
		}
		r.m.events.WithLabelValues(string(out.Result), out.Reason).Inc()
		log.Debug().Str("event_id", ev.ID).Int64("ticket_id", ev.TicketID).
			Str("conversation_id", out.Event.ConversationID).Str("outcome", out.String()).Msg("webhook event")
	}
	if rec.InvocationID != "" {
		if err := a.pub.Ledger().MarkInvocation(ctx, rec.InvocationID); err != nil {
			return err
		}
	}
	return nil
}

// resolveComment reads a trigger body's comment through the API (after
// the rules that need no API call; sink.Publisher.ResolveComment).
func (a *account) resolveComment(ctx context.Context, pl *events.Payload, receivedAt time.Time) (events.Event, bool, error) {
	if a.spec.Zendesk == nil {
		if pl.Comment != nil {
			a.log.Warn().Int64("ticket_id", pl.TicketID).Int64("comment_id", pl.Comment.ID).
				Msg("trigger body names a comment but no Zendesk client is configured: comment not forwarded")
		}
		return events.Event{}, false, nil
	}
	ev, reason, err := a.pub.ResolveComment(ctx, pl, commentReader{a}, events.SourceWebhook, receivedAt)
	if err != nil || ev == nil {
		if reason != "" {
			a.r.m.events.WithLabelValues(string(events.ResultSkipped), reason).Inc()
		}
		return events.Event{}, false, err
	}
	return *ev, true, nil
}

// commentReader reads through the account's Zendesk client, within its
// budget, with authors cached.
type commentReader struct{ a *account }

func (c commentReader) Comments(ctx context.Context, ticketID int64) ([]zendesk.Comment, error) {
	cs, err := budget.Call(ctx, c.a.spec.Limiter, budget.Options{}, func(ctx context.Context) ([]zendesk.Comment, error) {
		return c.a.spec.Zendesk.ListComments(ctx, ticketID)
	})
	return cs, spent(err)
}

func (c commentReader) Author(ctx context.Context, userID int64) (events.Author, error) {
	return c.a.author(ctx, userID)
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
func (a *account) author(ctx context.Context, id int64) (events.Author, error) {
	return a.users.Author(ctx, id, func(ctx context.Context, id int64) (*zendesk.User, error) {
		zu, err := budget.Call(ctx, a.spec.Limiter, budget.Options{}, func(ctx context.Context) (*zendesk.User, error) {
			return a.spec.Zendesk.GetUser(ctx, id)
		})
		if err = spent(err); err != nil && !queues.IsWait(err) {
			return nil, fmt.Errorf("read user %d: %w", id, err)
		}
		return zu, err
	})
}
