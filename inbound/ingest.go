package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/relay"
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
	if ref.AuthorID != 0 {
		// an end user's comment (the requester's reply) needs no comment listing
		u, err := r.user(ctx, ref.AuthorID)
		if err != nil {
			return events.Event{}, false, err
		}
		if u.role != events.RoleAgent {
			return events.Event{}, false, nil
		}
	}
	if err := r.allow(ctx); err != nil {
		return events.Event{}, false, err
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
		u, err := r.user(ctx, c.AuthorID)
		if err != nil {
			return events.Event{}, false, err
		}
		author.Name, author.Role = u.name, u.role
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

// allow takes one request from the shared Zendesk budget, or asks asynq to
// come back when there is one (not a failed attempt).
func (r *Receiver) allow(ctx context.Context) error {
	if r.limiter == nil {
		return nil
	}
	ok, wait, err := r.limiter.Allow(ctx)
	if err != nil {
		return fmt.Errorf("rate limiter: %w", err)
	}
	if !ok {
		return relay.Wait(wait, errors.New("zendesk request budget used up"))
	}
	return nil
}

// user returns a comment author's name and role (RoleAgent for agents and
// admins), from a short-lived cache or the API; a deleted user is an end user.
func (r *Receiver) user(ctx context.Context, id int64) (cachedUser, error) {
	if u, ok := r.users.get(id, r.cfg.Now()); ok {
		return u, nil
	}
	if err := r.allow(ctx); err != nil {
		return cachedUser{}, err
	}
	u := cachedUser{role: events.RoleEndUser}
	zu, err := r.zd.GetUser(ctx, id)
	switch {
	case err == nil:
		u.name = zu.Name
		if zu.Role == "agent" || zu.Role == "admin" {
			u.role = events.RoleAgent
		}
	case zendesk.KindOf(err) == zendesk.KindNotFound:
	default:
		return cachedUser{}, fmt.Errorf("read user %d: %w", id, err)
	}
	r.users.put(id, u, r.cfg.Now())
	return u, nil
}

type cachedUser struct {
	name, role string
	at         time.Time
}

// userCache remembers authors for a while: the trigger body names the
// latest comment on every update, mostly by the same few people.
type userCache struct {
	mu   sync.Mutex
	ttl  time.Duration
	max  int
	byID map[int64]cachedUser
}

func newUserCache(ttl time.Duration, max int) *userCache {
	return &userCache{ttl: ttl, max: max, byID: map[int64]cachedUser{}}
}

func (c *userCache) get(id int64, now time.Time) (cachedUser, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.byID[id]
	if !ok || now.Sub(u.at) > c.ttl {
		return cachedUser{}, false
	}
	return u, true
}

func (c *userCache) put(id int64, u cachedUser, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byID) >= c.max {
		clear(c.byID)
	}
	u.at = now
	c.byID[id] = u
}
