package sink

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/zendesk"
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

// ProcessTask is the TaskDeliver handler: it delivers one event to the sink,
// after the earlier events of its conversation (by occurred_at), with the
// keys of the payload's account (no account: the default, a task of the
// previous release).
func (d *Deliverer) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var pl DeliverPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil {
		return fmt.Errorf("deliver task: corrupt payload: %w: %w", err, asynq.SkipRetry)
	}
	j, err := d.job(&pl)
	if err != nil {
		return err
	}
	attempt, _ := asynq.GetRetryCount(ctx)
	if pl.Outcome != nil {
		return d.deliverOutcome(ctx, j, *pl.Outcome, attempt)
	}
	ev := pl.Event
	log := d.log.With().Str("account", j.account()).Str("event_id", ev.ID).Str("conversation_id", ev.ConversationID).
		Int64("ticket_id", ev.TicketID).Int("attempt", attempt).Str("queue", queues.Inbound).Logger()

	if wait := d.cfg.OrderSettle - d.cfg.Now().Sub(pl.PublishedAt); wait > 0 {
		return queues.Wait(wait, errSettling)
	}
	turn, wait, err := d.myTurn(ctx, j.pub, ev)
	if err != nil {
		return err
	}
	if !turn {
		j.count("wait")
		return queues.Wait(wait, errNotMyTurn)
	}

	if skip, err := j.pub.StatusGate(ctx, ev); err != nil {
		return err
	} else if skip != "" {
		j.count("dropped")
		log.Debug().Str("reason", skip).Msg("status change not delivered")
		return d.finish(ctx, j.pub, ev)
	}

	status, retryAfter, err := d.post(ctx, ev.ID, ev)
	return d.answer(log, j, ev.ID, status, retryAfter, err,
		func() error { return errors.Join(j.pub.StatusDelivered(ctx, ev), d.finish(ctx, j.pub, ev)) },
		func(reason string, cause error) error { return d.archive(ctx, j.pub, ev, reason, cause) })
}

// deliveryJob is one delivery's account: its Publisher (keys, ledger) and
// its series of the deliveries metric.
type deliveryJob struct {
	pub        *Publisher
	deliveries *prometheus.CounterVec
}

func (j deliveryJob) account() string { return j.pub.space.Account() }

func (j deliveryJob) count(outcome string) {
	j.deliveries.WithLabelValues(j.account(), outcome).Inc()
}

// job finds the Publisher of pl's account, and gives pl's event or outcome
// the account when it has none (a task of the previous release).
func (d *Deliverer) job(pl *DeliverPayload) (deliveryJob, error) {
	inner := pl.Event.Account
	if pl.Outcome != nil {
		inner = pl.Outcome.Account
	}
	account := events.AccountOf(cmp.Or(pl.Account, inner))
	if inner != "" && inner != account {
		return deliveryJob{}, fmt.Errorf("deliver task: corrupt payload: account %q holds an event of account %q: %w", account, inner, asynq.SkipRetry)
	}
	pub, ok := d.publishers(account)
	if !ok {
		return deliveryJob{}, fmt.Errorf("deliver task: account %q is not configured (retried: it may be added again)", account)
	}
	if pl.Outcome != nil {
		pl.Outcome.Account = account
	} else {
		pl.Event.Account = account
	}
	return deliveryJob{pub: pub, deliveries: d.deliveries}, nil
}

// deliverOutcome delivers a message outcome event: at once, in no
// conversation's order (see Outcomes).
func (d *Deliverer) deliverOutcome(ctx context.Context, j deliveryJob, o Outcome, attempt int) error {
	log := d.log.With().Str("account", j.account()).Str("event_id", o.ID).Str("message_id", o.MessageID).Str("conversation_id", o.ConversationID).
		Int("attempt", attempt).Str("queue", queues.Inbound).Logger()
	status, retryAfter, err := d.post(ctx, o.ID, o)
	return d.answer(log, j, o.ID, status, retryAfter, err,
		func() error { return j.pub.ledger.markIn(ctx, d.rdb, o.ID, d.cfg.Now()).Err() },
		func(reason string, cause error) error { return d.archiveOutcome(ctx, j.pub, o, reason, cause) })
}

// answer acts on the sink's answer to one delivery: done records a
// delivered event, keep archives one the sink refused for good.
func (d *Deliverer) answer(log zerolog.Logger, j deliveryJob, id string, status int, retryAfter time.Duration, err error,
	done func() error, keep func(reason string, cause error) error) error {
	switch {
	case err != nil:
		j.count("retry")
		log.Warn().Err(err).Msg("sink delivery failed: will retry")
		return err
	case status >= 200 && status < 300:
		j.count("delivered")
		if err := done(); err != nil {
			log.Warn().Err(err).Msg("delivered, bookkeeping failed")
		}
		log.Info().Int("sink_status", status).Msg("delivered to sink")
		return nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusGone:
		reason := ReasonUnauthorized
		if status == http.StatusGone {
			reason = ReasonGone
		}
		cause := fmt.Errorf("sink answered %d", status)
		if err := keep(reason, cause); err != nil {
			return fmt.Errorf("keep failed event %s: %w", id, err) // retried: never lose it
		}
		j.count("failed")
		log.Error().Int("status", status).Str("reason", reason).Msg("sink refused the event: failed, kept for replay")
		return queues.Fail(reason, cause)
	case (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && retryAfter > 0:
		j.count("wait")
		log.Info().Int("status", status).Dur("retry_after_ms", retryAfter).Msg("sink asks to wait")
		return queues.Wait(retryAfter, fmt.Errorf("sink answered %d", status))
	default:
		j.count("retry")
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
func (d *Deliverer) myTurn(ctx context.Context, pub *Publisher, ev events.Event) (turn bool, wait time.Duration, err error) {
	if err := orderJoin(ctx, d.rdb, pub.space, ev, pub.ledger.retention).Err(); err != nil {
		return false, 0, fmt.Errorf("order of %s: %w", ev.ConversationID, err)
	}
	for range 10 {
		head, err := orderHead(ctx, d.rdb, pub.space, ev.ConversationID)
		if err != nil {
			return false, 0, fmt.Errorf("order of %s: %w", ev.ConversationID, err)
		}
		if head == "" || head == ev.ID {
			return true, 0, nil
		}
		info, err := d.insp.GetTaskInfo(queues.Inbound, DeliverTaskID(head))
		if err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return false, 0, fmt.Errorf("order of %s: %w", ev.ConversationID, err)
		}
		if err == nil && info.State != asynq.TaskStateArchived && info.State != asynq.TaskStateCompleted {
			wait := d.cfg.OrderPoll
			if info.State == asynq.TaskStateRetry || info.State == asynq.TaskStateScheduled {
				wait = max(wait, min(time.Until(info.NextProcessAt), maxTurnWait))
			}
			return false, wait, nil
		}
		d.log.Warn().Str("event_id", head).Str("conversation_id", ev.ConversationID).
			Msg("event without a delivery task dropped from the conversation's order")
		if err := orderLeave(ctx, d.rdb, pub.space, ev.ConversationID, head).Err(); err != nil {
			return false, 0, fmt.Errorf("order of %s: %w", ev.ConversationID, err)
		}
	}
	return false, d.cfg.OrderPoll, nil
}

// post sends event id (its body ev) to the sink, signed with Standard
// Webhooks.
func (d *Deliverer) post(ctx context.Context, id string, ev any) (status int, retryAfter time.Duration, err error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return 0, 0, fmt.Errorf("encode event: %w", err)
	}
	now := d.cfg.Now()
	sig, err := d.signer.Sign(id, now, body)
	if err != nil {
		return 0, 0, fmt.Errorf("sign event: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("sink request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "deskrelay")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := d.http.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("post to sink: %w", redactURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	retryAfter, _ = zendesk.ParseRetryAfter(resp.Header.Get("Retry-After"), now) // 0 when absent or unreadable
	return resp.StatusCode, retryAfter, nil
}

// redactURL keeps the sink URL (which may carry a token) out of errors.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// finish records a delivered event: out of the conversation's order, in the
// ledger (again: the Publisher may have crashed before marking it).
func (d *Deliverer) finish(ctx context.Context, pub *Publisher, ev events.Event) error {
	_, err := d.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		orderLeave(ctx, p, pub.space, ev.ConversationID, ev.ID)
		pub.ledger.markIn(ctx, p, ev.ID, d.cfg.Now())
		return nil
	})
	return err
}
