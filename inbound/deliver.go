package inbound

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/relay"
)

// Failure reasons of sink deliveries.
const (
	ReasonUnauthorized = "unauthorized" // the sink answered 401 or 403
	ReasonGone         = "gone"         // the sink answered 410
)

var (
	errSettling  = errors.New("waiting for events of the conversation that may still arrive")
	errNotMyTurn = errors.New("an earlier event of the conversation is not delivered yet")
)

// maxRetryAfter caps a sink's Retry-After.
const maxRetryAfter = time.Hour

// handleDeliver delivers one event to the sink, after the earlier events of
// its conversation (by occurred_at).
func (r *Receiver) handleDeliver(ctx context.Context, t *asynq.Task) error {
	var pl events.DeliverPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil {
		return fmt.Errorf("deliver task: corrupt payload: %w: %w", err, asynq.SkipRetry)
	}
	ev := pl.Event
	attempt, _ := asynq.GetRetryCount(ctx)
	log := r.log.With().Str("event_id", ev.ID).Str("conversation_id", ev.ConversationID).
		Int64("ticket_id", ev.TicketID).Int("attempt", attempt).Str("queue", relay.QueueInbound).Logger()

	if wait := r.cfg.OrderSettle - r.cfg.Now().Sub(pl.PublishedAt); wait > 0 {
		return relay.Wait(wait, errSettling)
	}
	turn, wait, err := r.myTurn(ctx, ev)
	if err != nil {
		return err
	}
	if !turn {
		r.m.deliveries.WithLabelValues("wait").Inc()
		return relay.Wait(wait, errNotMyTurn)
	}

	if skip, err := r.pub.StatusGate(ctx, ev); err != nil {
		return err
	} else if skip != "" {
		r.m.deliveries.WithLabelValues("dropped").Inc()
		log.Debug().Str("reason", skip).Msg("status change not delivered")
		return r.finish(ctx, ev)
	}

	status, retryAfter, err := r.post(ctx, ev)
	switch {
	case err != nil:
		r.m.deliveries.WithLabelValues("retry").Inc()
		log.Warn().Err(err).Msg("sink delivery failed: will retry")
		return err
	case status >= 200 && status < 300:
		r.m.deliveries.WithLabelValues("delivered").Inc()
		if err := errors.Join(r.pub.StatusDelivered(ctx, ev), r.finish(ctx, ev)); err != nil {
			log.Warn().Err(err).Msg("delivered, bookkeeping failed")
		}
		log.Debug().Msg("delivered to sink")
		return nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusGone:
		reason := ReasonUnauthorized
		if status == http.StatusGone {
			reason = ReasonGone
		}
		cause := fmt.Errorf("sink answered %d", status)
		if err := r.archive(ctx, ev, reason, cause); err != nil {
			return fmt.Errorf("keep failed event %s: %w", ev.ID, err) // retried: never lose it
		}
		r.m.deliveries.WithLabelValues("failed").Inc()
		log.Error().Int("status", status).Str("reason", reason).Msg("sink refused the event: failed, kept for replay")
		return relay.Fail(reason, cause)
	case (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && retryAfter > 0:
		r.m.deliveries.WithLabelValues("wait").Inc()
		log.Info().Int("status", status).Dur("retry_after_ms", retryAfter).Msg("sink asks to wait")
		return relay.Wait(retryAfter, fmt.Errorf("sink answered %d", status))
	default:
		r.m.deliveries.WithLabelValues("retry").Inc()
		log.Warn().Int("status", status).Msg("sink delivery failed: will retry")
		return fmt.Errorf("sink answered %d", status)
	}
}

// maxTurnWait caps how long an event waits before it looks at its
// conversation's order again.
const maxTurnWait = 5 * time.Minute

// myTurn reports whether ev is the oldest undelivered event of its
// conversation; if not, wait is how long to wait before looking again (until
// the head's next attempt, at least OrderPoll, at most maxTurnWait). A head
// whose task no longer exists (deleted, or archived by hand) is dropped from
// the order so that it cannot block the rest.
func (r *Receiver) myTurn(ctx context.Context, ev events.Event) (turn bool, wait time.Duration, err error) {
	key := keys.InboundOrder(ev.ConversationID)
	if err := r.rdb.ZAddNX(ctx, key, redis.Z{Score: events.OrderScore(ev), Member: ev.ID}).Err(); err != nil {
		return false, 0, fmt.Errorf("order of %s: %w", ev.ConversationID, err)
	}
	for range 10 {
		head, err := r.rdb.ZRange(ctx, key, 0, 0).Result()
		if err != nil {
			return false, 0, fmt.Errorf("order of %s: %w", ev.ConversationID, err)
		}
		if len(head) == 0 || head[0] == ev.ID {
			return true, 0, nil
		}
		info, err := r.insp.GetTaskInfo(relay.QueueInbound, events.DeliverTaskID(head[0]))
		if err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return false, 0, fmt.Errorf("order of %s: %w", ev.ConversationID, err)
		}
		if err == nil && info.State != asynq.TaskStateArchived && info.State != asynq.TaskStateCompleted {
			wait := r.cfg.OrderPoll
			if info.State == asynq.TaskStateRetry || info.State == asynq.TaskStateScheduled {
				wait = max(wait, min(time.Until(info.NextProcessAt), maxTurnWait))
			}
			return false, wait, nil
		}
		r.log.Warn().Str("event_id", head[0]).Str("conversation_id", ev.ConversationID).
			Msg("event without a delivery task dropped from the conversation's order")
		if err := r.rdb.ZRem(ctx, key, head[0]).Err(); err != nil {
			return false, 0, fmt.Errorf("order of %s: %w", ev.ConversationID, err)
		}
	}
	return false, r.cfg.OrderPoll, nil
}

// post sends ev to the sink, signed with Standard Webhooks.
func (r *Receiver) post(ctx context.Context, ev events.Event) (status int, retryAfter time.Duration, err error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return 0, 0, fmt.Errorf("encode event: %w", err)
	}
	now := r.cfg.Now()
	sig, err := r.signer.Sign(ev.ID, now, body)
	if err != nil {
		return 0, 0, fmt.Errorf("sign event: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.SinkURL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("sink request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "deskrelay")
	req.Header.Set("webhook-id", ev.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("post to sink: %w", redactURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), now), nil
}

// redactURL keeps the sink URL (which may carry a token) out of errors.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date; 0 when
// absent or unreadable; capped at maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// finish records a delivered event: out of the conversation's order, in the
// ledger (again: the Publisher may have crashed before marking it).
func (r *Receiver) finish(ctx context.Context, ev events.Event) error {
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, keys.InboundOrder(ev.ConversationID), ev.ID)
		p.Set(ctx, keys.EventLedger(ev.ID), r.cfg.Now().Unix(), r.pub.Ledger().Retention())
		return nil
	})
	return err
}

// archive keeps a failed event for Replay and lets the rest of its
// conversation go on.
func (r *Receiver) archive(ctx context.Context, ev events.Event, reason string, cause error) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	now := r.cfg.Now()
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, keys.InboundFailedEvent(ev.ID), "event", b, "reason", reason, "error", cause.Error(), "failed_at", now.UnixMilli())
		p.ZAdd(ctx, keys.Failed(relay.QueueInbound), redis.Z{Score: float64(now.UnixMilli()), Member: ev.ID})
		p.ZRem(ctx, keys.InboundOrder(ev.ConversationID), ev.ID)
		p.Set(ctx, keys.EventLedger(ev.ID), now.Unix(), r.pub.Ledger().Retention())
		return nil
	})
	return err
}
