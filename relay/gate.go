package relay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
)

// The outage gate. A run of GateThreshold temporary Zendesk failures (5xx,
// 423, timeouts) closes it; while it is closed, outbound tasks park
// (Wait(GateParkTime), not counted as attempts) instead of hammering
// Zendesk, and one probe task (TypeGateProbe, a unique task id, so one at a
// time across replicas) asks Zendesk every GateProbeInterval. The first
// success, the probe's or any other call's, opens the gate and makes the
// parked backlog due at once (asynq Inspector RunAllRetryTasks /
// RunAllScheduledTasks on the outbound queue), so it drains at the limiter's
// rate within seconds, not when each task's backoff timer fires.

// Gate states.
const (
	GateOpen   = "open"
	GateClosed = "closed"
)

// TypeGateProbe is the asynq task type of the outage gate's probe.
const TypeGateProbe = "outbound:gate-probe"

const gateProbeTaskID = "outbound-gate-probe"

// gateFailScript counts a temporary failure; returns 1 when it closed the gate.
var gateFailScript = redis.NewScript(`
local n = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if n >= tonumber(ARGV[1]) and redis.call('HGET', KEYS[1], 'state') ~= 'closed' then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'since', ARGV[2])
  return 1
end
return 0
`)

// gateOKScript resets the run; returns 1 when it opened a closed gate.
var gateOKScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'closed' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'failures', 0, 'since', ARGV[1])
  return 1
end
if redis.call('HGET', KEYS[1], 'failures') ~= '0' then
  redis.call('HSET', KEYS[1], 'failures', 0)
end
return 0
`)

// GateReport is the gate's state for /v1/status.
type GateReport struct {
	State    string    `json:"state"`
	Since    time.Time `json:"since,omitzero"`
	Failures int       `json:"failures"` // temporary failures in a row
}

func (r *Relay) gateState(ctx context.Context) (GateReport, error) {
	h, since, err := r.watchState(ctx, keys.Default.OutboundGate())
	if err != nil {
		return GateReport{}, fmt.Errorf("outage gate: %w", err)
	}
	g := GateReport{State: GateOpen, Since: since}
	if h["state"] == GateClosed {
		g.State = GateClosed
	}
	g.Failures, _ = strconv.Atoi(h["failures"])
	return g, nil
}

// watchState reads one of the relay's watch hashes (the outage gate, the
// credentials): its fields and when the current state began.
func (r *Relay) watchState(ctx context.Context, key string) (map[string]string, time.Time, error) {
	h, err := r.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, time.Time{}, err
	}
	var since time.Time
	if ms, err := strconv.ParseInt(h["since"], 10, 64); err == nil && ms > 0 {
		since = time.UnixMilli(ms).UTC()
	}
	return h, since, nil
}

// scheduleProbe makes sure one probe task of typ is scheduled in the
// outbound queue, across all replicas (a fixed task id).
func (r *Relay) scheduleProbe(ctx context.Context, typ, id string, in time.Duration) {
	_, err := r.client.EnqueueContext(ctx, asynq.NewTask(typ, nil), asynq.Queue(queues.Outbound), asynq.TaskID(id),
		asynq.ProcessIn(in), asynq.MaxRetry(queues.MaxRetry), asynq.Timeout(r.cfg.AttemptTimeout))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		r.log.Warn().Err(err).Str("probe", typ).Msg("cannot schedule probe")
	}
}

// gateAdmit lets a task through when the gate is open; otherwise it makes
// sure a probe is scheduled and parks the task.
func (r *Relay) gateAdmit(ctx context.Context) error {
	st, err := r.rdb.HGet(ctx, keys.Default.OutboundGate(), "state").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("outage gate: %w", err)
	}
	if st != GateClosed {
		return nil
	}
	r.ensureProbe(ctx)
	r.m.gateParked.Inc()
	return queues.Wait(jitter(r.cfg.GateParkTime), errGateClosed)
}

var errGateClosed = errors.New("zendesk outage: gate closed, parked")

func (r *Relay) ensureProbe(ctx context.Context) {
	r.scheduleProbe(ctx, TypeGateProbe, gateProbeTaskID, r.cfg.GateProbeInterval)
}

// gateFailure counts a temporary Zendesk failure.
func (r *Relay) gateFailure(ctx context.Context) {
	closed, err := gateFailScript.Run(ctx, r.rdb, []string{keys.Default.OutboundGate()}, r.cfg.GateThreshold, r.cfg.Now().UnixMilli()).Int()
	if err != nil {
		r.log.Warn().Err(err).Msg("outage gate: cannot count failure")
		return
	}
	if closed == 1 {
		r.m.gateClosed.Set(1)
		r.log.Warn().Int("failures", r.cfg.GateThreshold).
			Msg("zendesk outage: outage gate closed, parking outbound work and probing")
		r.ensureProbe(ctx)
	}
}

// gateSuccess notes a successful Zendesk call; when it opens the gate, the
// parked backlog becomes due at once.
func (r *Relay) gateSuccess(ctx context.Context) {
	opened, err := gateOKScript.Run(ctx, r.rdb, []string{keys.Default.OutboundGate()}, r.cfg.Now().UnixMilli()).Int()
	if err != nil {
		r.log.Warn().Err(err).Msg("outage gate: cannot record success")
		return
	}
	if opened == 1 {
		r.m.gateClosed.Set(0)
		r.releaseBacklog()
	}
}

func (r *Relay) releaseBacklog() {
	nr, err1 := r.insp.RunAllRetryTasks(queues.Outbound)
	ns, err2 := r.insp.RunAllScheduledTasks(queues.Outbound)
	ev := r.log.Info()
	if err := errors.Join(err1, err2); err != nil {
		ev = r.log.Warn().Err(err)
	}
	ev.Int("released", nr+ns).Msg("zendesk answers again: outage gate open, backlog released")
}

// processProbe is the handler of TypeGateProbe.
func (r *Relay) processProbe(ctx context.Context, _ *asynq.Task) error {
	g, err := r.gateState(ctx)
	if err != nil {
		return queues.Wait(r.cfg.GateProbeInterval, err)
	}
	if g.State != GateClosed {
		return nil
	}
	if r.zd == nil {
		return queues.Wait(r.cfg.GateProbeInterval, errNoZendesk)
	}
	if err := r.limit(ctx); err != nil {
		return err
	}
	_, err = r.zd.Me(ctx)
	budget.Pause429(ctx, r.lim, err)
	r.observe("me", err)
	if err != nil {
		// Any answer from Zendesk other than a temporary failure means it is
		// up again (a 401 is the delivery's business, not the gate's).
		if k := kindOf(err); k == kindTemporary || k == kindOther {
			return queues.Wait(r.cfg.GateProbeInterval, fmt.Errorf("outage gate probe: %w", err))
		}
	}
	r.gateSuccess(ctx)
	return nil
}

// jitter spreads d over [d, 1.25·d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + time.Duration(randInt64N(int64(d)/4+1))
}
