package inbound

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/zendesk"
)

// handleWebhookTask turns one received body into events and publishes them.
// Publishing is idempotent per event, so a retry after a partial run is safe;
// the invocation is marked in the ledger only after all its events.
func (r *Receiver) handleWebhookTask(ctx context.Context, t *asynq.Task) error {
	var rec received
	if err := json.Unmarshal(t.Payload(), &rec); err != nil {
		return fmt.Errorf("webhook task: corrupt payload: %v: %w", err, asynq.SkipRetry)
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

// resolveComment reads a trigger body's comment through the API, after the
// checks that need no API call; ok is false when there is nothing to publish.
func (r *Receiver) resolveComment(ctx context.Context, pl *events.Payload, receivedAt time.Time) (events.Event, bool, error) {
	ref := pl.Comment
	_, managed, err := r.tickets.ConversationOf(ctx, pl.TicketID)
	if err != nil || !managed {
		return events.Event{}, false, err
	}
	own, err := r.tickets.IsOwnComment(ctx, ref.ID)
	if err != nil || own {
		return events.Event{}, false, err
	}
	if ref.Public != nil && !*ref.Public && !r.pub.ForwardPrivate() {
		return events.Event{}, false, nil
	}
	seen, err := r.pub.Ledger().Seen(ctx, events.CommentEventID(ref.ID))
	if err != nil || seen {
		return events.Event{}, false, err
	}
	if r.zd == nil {
		r.log.Warn().Int64("ticket_id", pl.TicketID).Int64("comment_id", ref.ID).
			Msg("trigger body names a comment but no Zendesk client is configured: comment not forwarded")
		return events.Event{}, false, nil
	}
	comments, err := r.zd.ListComments(ctx, pl.TicketID)
	if err != nil {
		if zendesk.KindOf(err) == zendesk.KindNotFound {
			return events.Event{}, false, nil // ticket deleted meanwhile
		}
		return events.Event{}, false, fmt.Errorf("read comments of ticket %d: %w", pl.TicketID, err)
	}
	var c *zendesk.Comment
	for i := range comments {
		if comments[i].ID == ref.ID {
			c = &comments[i]
			break
		}
	}
	if c == nil {
		r.log.Warn().Int64("ticket_id", pl.TicketID).Int64("comment_id", ref.ID).Msg("comment named by the trigger not found on the ticket")
		return events.Event{}, false, nil
	}
	author := events.Author{ID: c.AuthorID, Role: events.RoleEndUser}
	if c.AuthorID != 0 {
		u, err := r.zd.GetUser(ctx, c.AuthorID)
		switch {
		case err == nil:
			author.Name = u.Name
			if u.Role == "agent" || u.Role == "admin" {
				author.Role = events.RoleAgent
			}
		case zendesk.KindOf(err) == zendesk.KindNotFound:
		default:
			return events.Event{}, false, fmt.Errorf("read author %d: %w", c.AuthorID, err)
		}
	}
	created := c.CreatedAt
	if created.IsZero() {
		created = pl.UpdatedAt
	}
	if created.IsZero() {
		created = receivedAt
	}
	return events.NewCommentEvent(pl.TicketID, pl.Status, events.Comment{
		ID:        c.ID,
		Body:      c.Body,
		HTMLBody:  c.HTMLBody,
		Public:    c.Public,
		Author:    author,
		CreatedAt: created,
	}, events.SourceWebhook), true, nil
}
