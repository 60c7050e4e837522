package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/hibiken/asynq"
)

// Mover back-off and reporting.
const (
	moverMinBackoff   = 100 * time.Millisecond
	moverMaxBackoff   = 30 * time.Second
	stuckSummaryEvery = time.Minute
)

// SpoolStatus is the spool's state for /v1/status.
type SpoolStatus struct {
	// Pending is the number of requests waiting in the spool.
	Pending int64 `json:"pending"`
	// OldestAt is when the oldest waiting request was received.
	OldestAt time.Time `json:"oldest_at,omitzero"`
	// OldestAgeSeconds is how long the oldest request has waited.
	OldestAgeSeconds float64 `json:"oldest_age_seconds,omitempty"`
	// Stuck is why the mover cannot move requests into Redis ("" when it
	// can, or when nothing waits).
	Stuck string `json:"stuck,omitempty"`
	// StuckSince is when the mover started failing.
	StuckSince time.Time `json:"stuck_since,omitzero"`
}

// stuckState tracks a run of mover failures, so that it is logged when it
// starts, summarised periodically and when it ends — not once per attempt.
type stuckState struct {
	mu          sync.Mutex
	since       time.Time
	reason      string
	attempts    int
	lastSummary time.Time
}

// SpoolStatus reports what waits in the spool and whether the mover is stuck.
func (r *Receiver) SpoolStatus() SpoolStatus {
	st := SpoolStatus{Pending: r.spool.Pending()}
	if st.Pending > 0 {
		if p, ok := r.spool.oldest(); ok {
			var rec received
			if json.Unmarshal(p, &rec) == nil && !rec.ReceivedAt.IsZero() {
				st.OldestAt = rec.ReceivedAt
				st.OldestAgeSeconds = max(0, r.cfg.Now().Sub(rec.ReceivedAt).Seconds())
			}
		}
	}
	r.stuck.mu.Lock()
	st.Stuck, st.StuckSince = r.stuck.reason, r.stuck.since
	r.stuck.mu.Unlock()
	return st
}

// moveSpool moves spooled requests into Redis until ctx ends, backing off
// (exponentially, capped) while that fails.
func (r *Receiver) moveSpool(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	backoff := moverMinBackoff
	for ctx.Err() == nil {
		if r.spool.Pending() == 0 {
			r.moverOK()
			select {
			case <-ctx.Done():
			case <-r.spool.wake:
			case <-tick.C:
			}
			continue
		}
		n, err := r.spool.Drain(func(name string, payload []byte) error { return r.moveRecord(ctx, name, payload) })
		r.m.spoolFiles.Set(float64(r.spool.Pending()))
		if n > 0 {
			r.log.Info().Int("moved", n).Int64("left", r.spool.Pending()).Msg("spooled webhook requests moved into redis")
		}
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			r.moverFailed(err, backoff)
			sleep(ctx, backoff)
			backoff = min(backoff*2, moverMaxBackoff)
			continue
		}
		backoff = moverMinBackoff
		r.moverOK()
		r.downUntil.Store(0)
		r.slow.Store(false)
		if n == 0 { // what is counted is not readable yet: wait for news
			sleep(ctx, moverMinBackoff)
		}
	}
	return nil
}

// moveRecord enqueues one spooled request; an unreadable one is dropped.
func (r *Receiver) moveRecord(ctx context.Context, name string, payload []byte) error {
	var rec received
	if err := json.Unmarshal(payload, &rec); err != nil {
		r.log.Error().Err(err).Str("record", name).Msg("spool record unreadable: dropped")
		return nil
	}
	ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := r.enqueueReceived(ectx, payload, rec.Account, rec.InvocationID, name)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return err
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// moverFailed records a failed move: logged when a run of failures starts
// and summarised once a minute while it lasts.
func (r *Receiver) moverFailed(err error, retryIn time.Duration) {
	now := r.cfg.Now()
	s := &r.stuck
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	s.reason = "moving spooled requests into redis fails: " + err.Error()
	if s.since.IsZero() {
		s.since, s.lastSummary = now, now
		r.m.spoolStuck.Set(1)
		r.log.Error().Err(err).Int64("pending", r.spool.Pending()).Int64("retry_in_ms", retryIn.Milliseconds()).
			Msg("spool stuck: cannot move spooled webhook requests into redis; retrying with back-off")
		return
	}
	if now.Sub(s.lastSummary) >= stuckSummaryEvery {
		s.lastSummary = now
		r.log.Warn().Err(err).Int64("pending", r.spool.Pending()).Int("attempts", s.attempts).
			Int64("stuck_for_ms", now.Sub(s.since).Milliseconds()).Int64("retry_in_ms", retryIn.Milliseconds()).
			Msg("spool still stuck")
	}
}

// moverOK ends a run of mover failures.
func (r *Receiver) moverOK() {
	s := &r.stuck
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.since.IsZero() {
		return
	}
	r.log.Info().Int("attempts", s.attempts).Int64("stuck_for_ms", r.cfg.Now().Sub(s.since).Milliseconds()).
		Msg("spool no longer stuck: moving spooled requests into redis again")
	s.since, s.reason, s.attempts = time.Time{}, "", 0
	r.m.spoolStuck.Set(0)
}
