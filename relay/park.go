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

	"github.com/deskrelay/deskrelay/internal/queues"
)

// Parking. asynq's queues are fixed when its server starts, so the tasks of
// every account share the queue "outbound" and its one pending list. Work
// that cannot go on now for a reason of its account's (the account's
// outage gate is closed, its Zendesk budget is spent, it has a backlog)
// must neither stand in that list in front of other accounts' messages nor
// wake every few seconds. So it parks: the message id joins the account's
// parked set (keys.Space.OutboundParked, oldest first) and its task waits
// in asynq's retry or scheduled set on a long timer (GateParkTime, only a
// safety net). A release task of the account (TypeGateRelease; one at a
// time, its lease in the gate hash's "release" field) moves parked tasks
// back to the pending list with Inspector.RunTask, a slice at a time: what
// the account's budget takes in releaseSlice, then again every releaseEvery
// until the set is empty or the gate closes. The shared pending list thus
// never holds more than a couple of seconds of one account's work, and an
// outage costs no periodic waves of wake-ups.
//
// Who parks, and who starts the release:
//   - a task at the closed gate (parkGate; atomically with a second look at
//     the gate): the gate's opening starts the release (gateOKScript);
//   - a task whose account budget is spent or paused by a 429, and a new or
//     replayed message of an account whose gate is closed or that has
//     parked messages already (parkOther): the parker starts the release
//     when the gate is open and none runs.
//
// A parked task that runs by its timer, or that its predecessor woke,
// leaves its id behind; the release drops ids whose message is finished.

// TypeGateRelease is the asynq task type that releases the account's
// parked messages, a slice per run.
const TypeGateRelease = "outbound:gate-release"

// Release pacing: a run every releaseEvery (plus asynq's poll), each
// releasing what the account's budget takes in releaseSlice, at most
// maxReleaseSlice tasks.
const (
	releaseEvery    = time.Second
	releaseSlice    = 2 * time.Second
	maxReleaseSlice = 500
	// releaseLeaseFor is how long a release may go without a run before
	// another parker starts a new one (the lease in the gate hash).
	releaseLeaseFor = time.Minute
	// minRunnable and runnableLimitFor: runnableLimit.
	minRunnable      = 20
	runnableLimitFor = 5 * time.Second
)

// Park modes and outcomes.
const (
	parkGate  = "gate"
	parkOther = "other"

	parkedOpen    = "open"    // parkGate only: the gate is open, not parked
	parkedClosed  = "closed"  // parked; the gate's opening releases it
	parkedRunning = "running" // parked; a release runs
	parkedStart   = "start"   // parked; the caller starts the release
)

// parkScript parks a message. KEYS: parked set, gate. ARGV: id, now ms,
// release lease deadline ms, mode. Returns one of the outcomes above.
var parkScript = redis.NewScript(`
local closed = redis.call('HGET', KEYS[2], 'state') == 'closed'
if ARGV[4] == 'gate' and not closed then return 'open' end
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
if closed then return 'closed' end
local rel = tonumber(redis.call('HGET', KEYS[2], 'release') or '0') or 0
if rel > tonumber(ARGV[2]) then return 'running' end
redis.call('HSET', KEYS[2], 'release', ARGV[3])
return 'start'
`)

// releaseRoundScript decides whether a release goes on. KEYS: parked set,
// gate. ARGV: release lease deadline ms. Returns "closed" or "empty" (the
// release ends, its lease dropped) or "more" (its lease renewed).
var releaseRoundScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'state') == 'closed' then
  redis.call('HDEL', KEYS[2], 'release')
  return 'closed'
end
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('HDEL', KEYS[2], 'release')
  return 'empty'
end
redis.call('HSET', KEYS[2], 'release', ARGV[1])
return 'more'
`)

func (r *Relay) releaseLease(now time.Time) int64 { return now.Add(releaseLeaseFor).UnixMilli() }

// park adds message id to the account's parked set (see parkScript).
func (r *Relay) park(ctx context.Context, id, mode string) (string, error) {
	now := r.cfg.Now()
	return parkScript.Run(ctx, r.rdb, []string{r.space.OutboundParked(), r.space.OutboundGate()},
		id, now.UnixMilli(), r.releaseLease(now), mode).Text()
}

// parkTask parks message id whose task is about to return (parkOther) and
// starts the release when it is up to the parker; false when it could not
// park (the task then waits as it would have).
func (r *Relay) parkTask(ctx context.Context, id string) bool {
	res, err := r.park(ctx, id, parkOther)
	if err != nil {
		r.log.Warn().Err(err).Str("message_id", id).Msg("cannot park")
		return false
	}
	r.m.gateParked.Inc()
	if res == parkedStart {
		r.startRelease(ctx)
	}
	return true
}

// parkNew parks a new or replayed message whose task was enqueued parked
// (enqueueTask); when that fails, it makes the task due now rather than at
// its safety-net timer.
func (r *Relay) parkNew(ctx context.Context, id string, gen int64) {
	if r.parkTask(ctx, id) {
		return
	}
	_ = r.insp.RunTask(queues.Outbound, r.taskID(id, gen))
}

// parkable reports whether a task's error is its account's budget: spent
// (errBudgetSpent) or paused by Zendesk's 429.
func parkable(err error) bool {
	return errors.Is(err, errBudgetSpent) || kindOf(err) == kindRateLimited
}

var errBudgetSpent = errors.New("zendesk rate limit")

// startRelease enqueues the account's release task (the caller holds the
// release lease). Its id is new for every start: the default account's
// outbound-gate-release:<ms>, another's outbound-gate-release{<account>}:<ms>.
func (r *Relay) startRelease(ctx context.Context) {
	id := r.ownTaskID("outbound-gate-release") + ":" + strconv.FormatInt(r.cfg.Now().UnixMilli(), 10)
	_, err := r.client.EnqueueContext(ctx, asynq.NewTask(TypeGateRelease, r.ownPayload()), asynq.Queue(queues.Outbound),
		asynq.TaskID(id), asynq.MaxRetry(queues.MaxRetry), asynq.Timeout(r.cfg.AttemptTimeout))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		r.log.Warn().Err(err).Msg("cannot start the release of parked messages; the next parker starts it when its lease ends")
	}
}

var errReleasing = errors.New("releasing parked messages")

// processRelease is the handler of TypeGateRelease: one slice per run.
func (r *Relay) processRelease(ctx context.Context, _ *asynq.Task) error {
	next, done, err := r.releaseRound(ctx)
	switch {
	case err != nil:
		return queues.Wait(releaseEvery, fmt.Errorf("release of parked messages: %w", err))
	case done:
		return nil
	}
	return queues.Wait(next, errReleasing)
}

// releaseRound releases one slice; done when the set is empty or the gate
// closed, else when to run again.
func (r *Relay) releaseRound(ctx context.Context) (next time.Duration, done bool, err error) {
	st, err := releaseRoundScript.Run(ctx, r.rdb, []string{r.space.OutboundParked(), r.space.OutboundGate()},
		r.releaseLease(r.cfg.Now())).Text()
	if err != nil || st != "more" {
		return 0, err == nil, err
	}
	n, wait := r.sliceSize(ctx)
	if wait > 0 {
		return wait, false, nil
	}
	ids, err := r.rdb.ZRange(ctx, r.space.OutboundParked(), 0, int64(n-1)).Result()
	if err != nil {
		return 0, false, err
	}
	released, err := r.release(ctx, ids)
	if released > 0 {
		r.log.Debug().Int("released", released).Int("slice", n).Msg("released parked messages")
	}
	return releaseEvery, false, err
}

// runnableLimit is how many of the account's messages may be runnable
// (queued, not parked: in the shared pending list, running, or waiting on
// a short timer) before a new one parks at intake: what its budget takes in
// a release slice, at least minRunnable. A burst that arrives while
// Zendesk fails but before the gate has closed (a run of slow failures)
// thus never fills the shared pending list in front of other accounts'
// messages. It is read from the limiter at most every runnableLimitFor.
func (r *Relay) runnableLimit(ctx context.Context) int64 {
	now := time.Now().UnixNano()
	if at := r.runnableAt.Load(); at != 0 && now-at < int64(runnableLimitFor) {
		return r.runnable.Load()
	}
	var limit int64 // 0: no limit (the budget could not be read)
	if st, err := r.lim.State(ctx); err == nil {
		// Not capped like a release slice: a healthy account with a large
		// budget keeps its messages runnable.
		limit = max(int64(st.PerMinute)*int64(releaseSlice)/int64(time.Minute), minRunnable)
	}
	r.runnable.Store(limit)
	r.runnableAt.Store(now)
	return limit
}

// sliceSize is how many parked tasks the account's budget takes in
// releaseSlice; wait > 0 while the budget is paused.
func (r *Relay) sliceSize(ctx context.Context) (n int, wait time.Duration) {
	st, err := r.lim.State(ctx)
	if err != nil {
		return 1, 0
	}
	if d := time.Until(st.PausedUntil); !st.PausedUntil.IsZero() && d > 0 {
		return 0, d
	}
	n = int((int64(st.PerMinute)*int64(releaseSlice) + int64(time.Minute) - 1) / int64(time.Minute))
	return min(max(n, 1), maxReleaseSlice), 0
}

// release makes the tasks of the parked messages ids due now and drops
// them from the parked set; a task still running (it is parking, or its
// timer fired) stays for the next round. It reports how many it released.
func (r *Relay) release(ctx context.Context, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	p := r.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = p.HMGet(ctx, r.space.Message(id), "state", "gen")
	}
	if _, err := p.Exec(ctx); err != nil {
		return 0, err
	}
	var drop []any
	released := 0
	for i, id := range ids {
		v := cmds[i].Val()
		state, _ := v[0].(string)
		gen, _ := strconv.ParseInt(fmt.Sprint(v[1]), 10, 64)
		if state != StateQueued && state != "accepting" {
			drop = append(drop, id) // finished, or gone
			continue
		}
		switch r.runTask(ctx, id, gen) {
		case runDone:
			released++
			drop = append(drop, id)
		case runGone:
			drop = append(drop, id)
		}
	}
	if len(drop) > 0 {
		return released, r.rdb.ZRem(ctx, r.space.OutboundParked(), drop...).Err()
	}
	return released, nil
}

type runOutcome int

const (
	runDone  runOutcome = iota // due now (or pending already)
	runGone                    // nothing to run (given a new task)
	runLater                   // running, or an error: next round
)

// runTask makes a parked message's task due now, whichever release enqueued
// it; a queued message without a task gets a new one (as repairHead does).
func (r *Relay) runTask(ctx context.Context, id string, gen int64) runOutcome {
	for _, tid := range r.taskIDs(id, gen) {
		err := r.insp.RunTask(queues.Outbound, tid)
		switch {
		case err == nil, err != nil && strings.Contains(err.Error(), "pending"):
			return runDone
		case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
			continue
		case strings.Contains(err.Error(), "running"):
			return runLater
		default:
			r.log.Warn().Err(err).Str("message_id", id).Msg("cannot release a parked message")
			return runLater
		}
	}
	if err := r.enqueueTask(ctx, id, gen, false); err != nil {
		return runLater
	}
	r.log.Warn().Str("message_id", id).Msg("parked message had no task: enqueued it again")
	return runGone
}

// releaseFirst delivers the oldest parked message that is its
// conversation's head (among the first firstScan) at once, in the probe
// that saw Zendesk answer again, without waiting for asynq to hand its task
// to a worker; its task then finds it delivered (as after chain).
func (r *Relay) releaseFirst(ctx context.Context) {
	id, gen, ok := r.firstParkedHead(ctx)
	if !ok {
		return
	}
	if err := r.processMessage(ctx, asynq.NewTask(TypeMessage, r.messagePayload(id, gen))); err != nil {
		r.log.Debug().Err(err).Str("message_id", id).Msg("first parked message not delivered at once; the release takes it")
		return
	}
	if st, err := r.rdb.HGet(ctx, r.space.Message(id), "state").Result(); err == nil && st == StateDelivered {
		// Its own task has nothing left to do (a failed one's stays
		// archived, visible).
		r.dropDoneTask(id, gen)
		_ = r.rdb.ZRem(ctx, r.space.OutboundParked(), id).Err()
	}
}

// firstScan bounds how many parked messages releaseFirst looks at.
const firstScan = 20

// firstParkedHead finds the oldest parked message that heads its
// conversation's pending set, and its generation.
func (r *Relay) firstParkedHead(ctx context.Context) (string, int64, bool) {
	ids, err := r.rdb.ZRange(ctx, r.space.OutboundParked(), 0, firstScan-1).Result()
	if err != nil || len(ids) == 0 {
		return "", 0, false
	}
	p := r.rdb.Pipeline()
	recs := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		recs[i] = p.HMGet(ctx, r.space.Message(id), "conv", "gen")
	}
	if _, err := p.Exec(ctx); err != nil {
		return "", 0, false
	}
	heads := make([]*redis.StringSliceCmd, len(ids))
	for i := range ids {
		conv, _ := recs[i].Val()[0].(string)
		heads[i] = p.ZRange(ctx, r.space.ConversationPending(conv), 0, 0)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return "", 0, false
	}
	for i, id := range ids {
		if h := heads[i].Val(); len(h) == 1 && h[0] == id {
			gen, _ := strconv.ParseInt(fmt.Sprint(recs[i].Val()[1]), 10, 64)
			return id, gen, true
		}
	}
	return "", 0, false
}
