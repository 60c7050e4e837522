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
// rate within seconds, not when each task's backoff timer fires. A task that
// was on its way to park as the gate opened is released by the release
// passes that follow the opening (TypeGateRelease).

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
	// The gate may have opened since it was read (the probe answered while
	// this task was on its way to park): a task parked now would miss that
	// release and wait its whole park time.
	st, err = r.rdb.HGet(ctx, keys.Default.OutboundGate(), "state").Result()
	if err == nil && st != GateClosed {
		return nil
	}
	r.m.gateParked.Inc()
	if r.testHookParking != nil {
		r.testHookParking(ctx)
	}
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
		n := r.releaseBacklog()
		r.log.Info().Int("released", n).Msg("zendesk answers again: outage gate open, backlog released")
		r.scheduleRelease(ctx)
	}
}

// releaseBacklog makes every parked or waiting outbound task due now. It is
// idempotent: releasing twice only makes due what is due already.
func (r *Relay) releaseBacklog() int {
	nr, err1 := r.insp.RunAllRetryTasks(queues.Outbound)
	ns, err2 := r.insp.RunAllScheduledTasks(queues.Outbound)
	if err := errors.Join(err1, err2); err != nil {
		r.log.Warn().Err(err).Msg("outage gate: cannot release the backlog")
	}
	return nr + ns
}

// A task that was parking while the gate opened (it read "closed", then
// the release ran while it was still running) reaches asynq's retry set
// only after the release: the release runs again, as its own task
// (TypeGateRelease, one per opening across replicas), at each of
// releaseAgainAfter after the opening.
var releaseAgainAfter = []time.Duration{250 * time.Millisecond, time.Second, 3 * time.Second}

// TypeGateRelease is the asynq task type that releases the outbound backlog
// again after the outage gate opened.
const TypeGateRelease = "outbound:gate-release"

func (r *Relay) scheduleRelease(ctx context.Context) {
	id := "outbound-gate-release:" + strconv.FormatInt(r.cfg.Now().UnixMilli(), 10)
	_, err := r.client.EnqueueContext(ctx, asynq.NewTask(TypeGateRelease, nil), asynq.Queue(queues.Outbound), asynq.TaskID(id),
		asynq.MaxRetry(0), asynq.Timeout(r.cfg.AttemptTimeout))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		r.log.Warn().Err(err).Msg("outage gate: cannot schedule the second release")
	}
}

// processRelease is the handler of TypeGateRelease.
func (r *Relay) processRelease(ctx context.Context, _ *asynq.Task) error {
	start := time.Now()
	for _, at := range releaseAgainAfter {
		t := time.NewTimer(time.Until(start.Add(at)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if st, err := r.rdb.HGet(ctx, keys.Default.OutboundGate(), "state").Result(); err == nil && st == GateClosed {
			return nil // closed again: the next opening releases
		}
		if n := r.releaseBacklog(); n > 0 {
			r.log.Info().Int("released", n).Int64("after_ms", at.Milliseconds()).
				Msg("outage gate: released tasks that were parking while it opened")
		}
	}
	return nil
}

// processProbe is the handler of TypeGateProbe. It probes every
// GateProbeInterval itself, for up to probeRun, rather than going back to
// asynq between probes (whose polling would add up to a poll interval to
// every probe interval, and so to the time the backlog waits after Zendesk
// recovered).
func (r *Relay) processProbe(ctx context.Context, _ *asynq.Task) error {
	until := time.Now().Add(min(probeRun, r.cfg.AttemptTimeout/2))
	for {
		again, err := r.probeOnce(ctx)
		if !again {
			return err
		}
		if time.Now().Add(r.cfg.GateProbeInterval).After(until) {
			return queues.Wait(r.cfg.GateProbeInterval, err)
		}
		t := time.NewTimer(r.cfg.GateProbeInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return queues.Wait(r.cfg.GateProbeInterval, err)
		case <-t.C:
		}
	}
}

// probeRun bounds how long one probe task keeps probing before it hands
// its worker back to asynq.
const probeRun = time.Minute

// probeOnce asks Zendesk once whether it is up; again is true while the
// gate stays closed (err says why).
func (r *Relay) probeOnce(ctx context.Context) (again bool, err error) {
	g, err := r.gateState(ctx)
	if err != nil {
		return true, err
	}
	if g.State != GateClosed {
		return false, nil
	}
	if r.zd == nil {
		return false, queues.Wait(r.cfg.GateProbeInterval, errNoZendesk)
	}
	if err := r.limit(ctx); err != nil {
		return false, err
	}
	_, err = r.zd.Me(ctx)
	budget.Pause429(ctx, r.lim, err)
	r.observe("me", err)
	if err != nil {
		// Any answer from Zendesk other than a temporary failure means it is
		// up again (a 401 is the delivery's business, not the gate's).
		if k := kindOf(err); k == kindTemporary || k == kindOther {
			return true, fmt.Errorf("outage gate probe: %w", err)
		}
	}
	r.gateSuccess(ctx)
	return false, nil
}

// jitter spreads d over [d, 1.25·d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + time.Duration(randInt64N(int64(d)/4+1))
}
