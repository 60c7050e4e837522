package inbound

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
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
	u, err := c.r.user(ctx, userID)
	if err != nil {
		return events.Author{}, err
	}
	return events.Author{ID: userID, Name: u.name, Role: u.role}, nil
}

// spent asks asynq to come back when the shared Zendesk budget has a
// request again (not a failed attempt); the trigger path never waits inline.
func spent(err error) error {
	if d, ok := budget.Spent(err); ok {
		return queues.Wait(d, err)
	}
	return err
}

// user returns a comment author's name and role (RoleAgent for agents and
// admins), from a short-lived cache or the API; a deleted user is an end user.
func (r *Receiver) user(ctx context.Context, id int64) (cachedUser, error) {
	if u, ok := r.users.get(id, r.cfg.Now()); ok {
		return u, nil
	}
	u := cachedUser{role: events.RoleEndUser}
	zu, err := budget.Call(ctx, r.limiter, budget.Options{}, func(ctx context.Context) (*zendesk.User, error) {
		return r.zd.GetUser(ctx, id)
	})
	if err = spent(err); queues.IsWait(err) {
		return cachedUser{}, err
	}
	switch {
	case err == nil:
		a := events.AuthorOf(zu)
		u.name, u.role = a.Name, a.Role
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

func newUserCache(ttl time.Duration, limit int) *userCache {
	return &userCache{ttl: ttl, max: limit, byID: map[int64]cachedUser{}}
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
