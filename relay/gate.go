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
	"github.com/deskrelay/deskrelay/internal/queues"
)

// The outage gate, one per account. A run of GateThreshold temporary
// Zendesk failures (5xx, 423, timeouts) closes it; while it is closed, the
// account's outbound tasks park (park.go: off asynq's shared pending list,
// on a long safety-net timer, not counted as attempts) instead of hammering
// Zendesk, and one probe task of the account (TypeGateProbe, a unique task
// id, so one at a time across replicas) asks Zendesk every
// GateProbeInterval. The first success, the probe's or any other call's,
// opens the gate and starts the release of the account's parked messages, a
// budget's worth at a time (park.go); the probe that saw Zendesk answer
// delivers the oldest parked message itself, at once, so that the first
// delivery does not wait for asynq's polling.

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

// gateOKScript resets the run; returns 1 when it opened a closed gate, 2
// when it opened it and marked a release of the parked messages started
// (there are some and no release runs: the caller starts it).
// KEYS: gate, parked set. ARGV: now ms, release lease deadline ms.
var gateOKScript = redis.NewScript(`
local g = redis.call('HMGET', KEYS[1], 'state', 'failures')
if g[1] == 'closed' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'failures', 0, 'since', ARGV[1])
  local rel = tonumber(redis.call('HGET', KEYS[1], 'release') or '0') or 0
  if redis.call('ZCARD', KEYS[2]) > 0 and rel <= tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[1], 'release', ARGV[2])
    return 2
  end
  return 1
end
if g[2] ~= '0' then
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
	h, since, err := r.watchState(ctx, r.space.OutboundGate())
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
// outbound queue, across all replicas (a fixed task id per account).
func (r *Relay) scheduleProbe(ctx context.Context, typ, id string, in time.Duration) {
	_, err := r.client.EnqueueContext(ctx, asynq.NewTask(typ, r.ownPayload()), asynq.Queue(queues.Outbound), asynq.TaskID(r.ownTaskID(id)),
		asynq.ProcessIn(in), asynq.MaxRetry(queues.MaxRetry), asynq.Timeout(r.cfg.AttemptTimeout))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		r.log.Warn().Err(err).Str("probe", typ).Msg("cannot schedule probe")
	}
}

// gateAdmit lets message id's task through when the gate is open;
// otherwise it makes sure a probe is scheduled and parks the task.
func (r *Relay) gateAdmit(ctx context.Context, id string) error {
	st, err := r.rdb.HGet(ctx, r.space.OutboundGate(), "state").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("outage gate: %w", err)
	}
	if st != GateClosed {
		return nil
	}
	r.ensureProbe(ctx)
	// Parking looks at the gate again, in the same script: a gate that
	// opened since it was read lets the task through, and one that opens
	// later finds the task parked and releases it.
	res, err := r.park(ctx, id, parkGate)
	if err != nil {
		return fmt.Errorf("outage gate: %w", err)
	}
	if res == parkedOpen {
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
	closed, err := gateFailScript.Run(ctx, r.rdb, []string{r.space.OutboundGate()}, r.cfg.GateThreshold, r.cfg.Now().UnixMilli()).Int()
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
// release of the parked messages starts. It reports whether it opened it.
func (r *Relay) gateSuccess(ctx context.Context) bool {
	now := r.cfg.Now()
	opened, err := gateOKScript.Run(ctx, r.rdb, []string{r.space.OutboundGate(), r.space.OutboundParked()},
		now.UnixMilli(), r.releaseLease(now)).Int()
	if err != nil {
		r.log.Warn().Err(err).Msg("outage gate: cannot record success")
		return false
	}
	if opened == 0 {
		return false
	}
	r.m.gateClosed.Set(0)
	r.log.Info().Bool("release", opened == 2).Msg("zendesk answers again: outage gate open, releasing the parked messages")
	if opened == 2 {
		r.startRelease(ctx)
	}
	return true
}

// processProbe is the handler of TypeGateProbe (one per account). It
// probes every GateProbeInterval itself, for up to probeRun, rather than going back to
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
	r.gateSuccess(ctx) // observe has opened it already, unless Zendesk's answer was an error
	r.releaseFirst(ctx)
	return false, nil
}

// jitter spreads d over [d, 1.25·d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + time.Duration(randInt64N(int64(d)/4+1))
}
