package relay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/lease"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/zendesk"
)

// Ordering. Each conversation has a pending set (message id → position) and
// an order hash ("next": the position expected next). A message is sent
// only when it is the lowest pending position of its conversation and its
// position is not beyond "next"; when it is beyond (a gap: 3 arrived, 2 has
// not), the conversation waits up to OrderGapTimeout from the moment the
// gap was first seen, then logs the gap and goes on. Finishing a message
// (delivered or failed) moves "next" past it and wakes the new head's task
// at once. Only the head takes the conversation lock, so a stuck
// conversation blocks itself and no other.

// convTurn is what a turn check reads of a conversation, in one round
// trip (readTurn).
type convTurn struct {
	head []redis.Z // the lowest pending position, if any
	ord  []any     // the order hash's next, gap_since, new
	gate string    // the outage gate's state, when read
}

// readTurn reads conv's head and order state, and the account's outage
// gate when gate is set, in one pipeline.
func (r *Relay) readTurn(ctx context.Context, conv string, gate bool) (convTurn, error) {
	p := r.rdb.Pipeline()
	headCmd := p.ZRangeWithScores(ctx, r.space.ConversationPending(conv), 0, 0)
	ordCmd := p.HMGet(ctx, r.space.ConversationOrder(conv), "next", "gap_since", "new")
	var gateCmd *redis.StringCmd
	if gate {
		gateCmd = p.HGet(ctx, r.space.OutboundGate(), "state")
	}
	_, _ = p.Exec(ctx)
	t := convTurn{head: headCmd.Val(), ord: ordCmd.Val()}
	err := errors.Join(headCmd.Err(), ordCmd.Err())
	if gateCmd != nil {
		t.gate = gateCmd.Val()
		if err == nil && !errors.Is(gateCmd.Err(), redis.Nil) {
			err = gateCmd.Err()
		}
	}
	if err != nil {
		return t, fmt.Errorf("conversation %s order: %w", conv, err)
	}
	return t, nil
}

// turn reports whether rec may be sent now; otherwise how long to wait.
func (r *Relay) turn(ctx context.Context, rec *record) (bool, time.Duration, error) {
	t, err := r.readTurn(ctx, rec.Conv, false)
	if err != nil {
		return false, 0, err
	}
	return r.turnWith(ctx, rec, t)
}

// turnWith is turn on the conversation state t, read after rec.
func (r *Relay) turnWith(ctx context.Context, rec *record, t convTurn) (bool, time.Duration, error) {
	head, ord := t.head, t.ord
	if len(head) == 0 || (head[0].Member.(string) != rec.ID && int64(head[0].Score) > rec.Pos) {
		// Not pending although queued when rec was read: rejoin, unless
		// another worker (a chain) finished it meanwhile.
		if err := r.rejoin(ctx, rec.Conv, rec.ID); err != nil {
			return false, 0, fmt.Errorf("conversation %s order: %w", rec.Conv, err)
		}
		return false, queues.MinDelay, nil
	}
	if h := head[0].Member.(string); h != rec.ID {
		r.wake(ctx, rec.Conv, h, 1)
		// Finishing messages wake their successor, so polling is only a
		// safety net: the further back in line, the less often.
		rank, err := r.rdb.ZRank(ctx, r.space.ConversationPending(rec.Conv), rec.ID).Result()
		if err != nil {
			rank = 0
		}
		return false, min(r.cfg.TurnPoll*time.Duration(1+min(rank, 1000)), max(r.cfg.TurnPoll, time.Minute)), nil
	}
	next := int64(1)
	if s, ok := ord[0].(string); ok {
		next, _ = strconv.ParseInt(s, 10, 64)
	} else if _, known := ord[2].(string); !known && rec.Pos > 1 {
		return r.resumeOrWait(ctx, rec)
	}
	if rec.Pos <= next {
		return true, 0, nil
	}
	now := r.cfg.Now()
	since := now
	if s, ok := ord[1].(string); ok {
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
			since = time.UnixMilli(ms)
		}
	} else if err := r.rdb.HSetNX(ctx, r.space.ConversationOrder(rec.Conv), "gap_since", now.UnixMilli()).Err(); err != nil {
		return false, 0, err
	}
	waited := now.Sub(since)
	if waited >= r.cfg.OrderGapTimeout {
		r.log.Warn().Str("conversation_id", rec.Conv).Str("message_id", rec.ID).
			Int64("missing_from", next).Int64("missing_to", rec.Pos-1).Dur("waited_ms", waited).
			Msg("sequence gap: missing messages did not arrive in time, going on")
		r.m.orderGaps.Inc()
		return true, 0, nil
	}
	return false, min(r.cfg.OrderGapTimeout-waited, r.cfg.TurnPoll), nil
}

// resumeOrWait decides for a conversation without an order state whose
// first message is beyond position 1: either a new conversation whose first
// messages are late (it waits for them, as any gap), or one whose order
// state expired (Config.Retention) and that Zendesk knows by external_id:
// it resumes from this message, waiting for no earlier one.
func (r *Relay) resumeOrWait(ctx context.Context, rec *record) (bool, time.Duration, error) {
	list, err := zdCall(ctx, r, "list tickets by external_id", func(ctx context.Context) ([]zendesk.Ticket, error) {
		return r.zd.TicketsByExternalID(ctx, rec.Conv)
	})
	if err != nil {
		return false, 0, fmt.Errorf("conversation %s: %w", rec.Conv, err)
	}
	field, val := "new", int64(1)
	if len(list) > 0 {
		field, val = "next", rec.Pos
		r.log.Info().Str("conversation_id", rec.Conv).Str("message_id", rec.ID).Int64("position", rec.Pos).
			Msg("conversation's order state expired: resuming from this message")
	}
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, r.space.ConversationOrder(rec.Conv), field, val)
		p.PExpire(ctx, r.space.ConversationOrder(rec.Conv), r.cfg.Retention)
		return nil
	})
	if err != nil {
		return false, 0, fmt.Errorf("conversation %s order: %w", rec.Conv, err)
	}
	return r.turn(ctx, rec) // again, under the state just written
}

// rejoinScript puts a message into its conversation's pending set at its
// position when its record is queued, and takes it out otherwise
// (finished, or gone): decided on the record as it is now, never on a copy
// read earlier, so that a finished message never heads its conversation
// again. KEYS: record, pending. ARGV: id. Returns 1 when it is pending.
var rejoinScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') == 'queued' then
  redis.call('ZADD', KEYS[2], tonumber(redis.call('HGET', KEYS[1], 'pos') or '0') or 0, ARGV[1])
  return 1
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 0
`)

// rejoin runs rejoinScript for message id of conversation conv.
func (r *Relay) rejoin(ctx context.Context, conv, id string) error {
	return rejoinScript.Run(ctx, r.rdb, []string{r.space.Message(id), r.space.ConversationPending(conv)}, id).Err()
}

// wake makes a waiting message's task due now (best effort: it may be
// running or pending already).
//
// A parked message is left to its release: waking it would put it on the
// shared pending list out of the account's turn (park.go).
func (r *Relay) wake(ctx context.Context, conv, id string, tries int) {
	p := r.rdb.Pipeline()
	genCmd := p.HGet(ctx, r.space.Message(id), "gen")
	parkedCmd := p.ZScore(ctx, r.space.OutboundParked(), id)
	_, _ = p.Exec(ctx)
	if parkedCmd.Err() == nil {
		return
	}
	gen, err := genCmd.Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return
	}
	tid := r.taskID(id, gen)
	for i := 0; i < tries; i++ {
		err := r.insp.RunTask(queues.Outbound, tid)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			r.repairHead(ctx, conv, id)
			return
		}
		if err == nil || !strings.Contains(err.Error(), "already running") {
			return
		}
		// Its handler is returning (it found the conversation busy); try
		// again as soon as it is back in the retry set.
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// repairHead heals a conversation whose head has no task: a finished or
// vanished message leaves the pending set; a queued one gets its task back
// (asynq's at-least-once and our checks make a second task harmless).
func (r *Relay) repairHead(ctx context.Context, conv, id string) {
	rec, err := r.st.load(ctx, id)
	switch {
	case errors.Is(err, errNoRecord), err == nil && (rec.State == StateDelivered || rec.State == StateFailed):
		// Nothing to deliver: the conversation must not wait for it.
		_ = r.rejoin(ctx, conv, id)
	case err != nil:
		return
	default:
		if err := r.enqueueTask(ctx, id, rec.Gen, false); err == nil {
			r.log.Warn().Str("message_id", id).Str("conversation_id", rec.Conv).Msg("message had no task: enqueued it again")
		}
	}
}

// wakeHead wakes the head of a conversation after a message finished.
func (r *Relay) wakeHead(ctx context.Context, conv string) {
	head, err := r.rdb.ZRange(ctx, r.space.ConversationPending(conv), 0, 0).Result()
	if err != nil || len(head) == 0 {
		return
	}
	r.wake(ctx, conv, head[0], 5)
}

// convLock is a conversation's lock, renewed while held.
type convLock struct {
	l      *lease.Lease
	cancel context.CancelFunc
	done   chan struct{}
}

var errLockBusy = errors.New("conversation busy")

// lock takes the conversation's lock. The returned context ends when the
// lock is lost (it could not be renewed), so that no write happens without it.
func (r *Relay) lock(ctx context.Context, conv string) (*convLock, context.Context, error) {
	ll, err := lease.Acquire(ctx, r.rdb, r.space.ConversationLock(conv), r.cfg.LockTTL)
	if err != nil {
		return nil, nil, fmt.Errorf("lock conversation %s: %w", conv, err)
	}
	if ll == nil {
		return nil, nil, errLockBusy
	}
	l := &convLock{l: ll, done: make(chan struct{})}
	lctx, cancel := context.WithCancel(context.WithValue(ctx, lockKey{}, l))
	l.cancel = cancel
	go func() {
		defer close(l.done)
		tick := time.NewTicker(r.cfg.LockTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-tick.C:
				held, err := ll.Extend(lctx)
				if lctx.Err() != nil {
					return
				}
				if err != nil || !held {
					r.log.Warn().Err(err).Str("conversation_id", conv).Msg("conversation lock lost")
					cancel()
					return
				}
			}
		}
	}()
	return l, lctx, nil
}

type lockKey struct{}

// stillHeld renews the lock of ctx's conversation and reports whether this
// worker still holds it: checked right before every write, so that a worker
// that stalled past LockTTL never writes after another took over.
func stillHeld(ctx context.Context) error {
	l, _ := ctx.Value(lockKey{}).(*convLock)
	if l == nil {
		return nil
	}
	held, err := l.l.Extend(ctx)
	if err != nil {
		return fmt.Errorf("conversation lock: %w", err)
	}
	if !held {
		return errLockLost
	}
	return nil
}

var errLockLost = errors.New("conversation lock lost")

func (l *convLock) release() {
	l.cancel()
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = l.l.Release(ctx)
}
