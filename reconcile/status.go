package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Status is the reconciler's part of GET /v1/status. It reads Redis only.
// Like all of /v1/status (README, "Status JSON"): durations are numbers of
// seconds in fields named *_seconds, times RFC 3339 strings.
type Status struct {
	// Account is the Zendesk account the status describes.
	Account string `json:"account"`
	// Enabled is false when the schedule is off (Interval 0).
	Enabled bool `json:"enabled"`
	// IntervalSeconds is Config.Interval.
	IntervalSeconds float64 `json:"interval_seconds"`
	// Checkpoint is where the next scheduled run starts; CheckpointAge is
	// how far behind now it is, in seconds (-1 when there is none yet).
	Checkpoint    time.Time `json:"checkpoint,omitzero"`
	CheckpointAge float64   `json:"checkpoint_age_seconds"`
	// Running is true while a run holds the lease.
	Running bool `json:"running"`
	// PendingGapSince is a gap the next run will go back to cover.
	PendingGapSince time.Time `json:"pending_gap_since,omitzero"`
	// LastRun is the last scheduled run's report.
	LastRun *Report `json:"last_run,omitempty"`
	// Webhook is the guardian's last check (nil when none was recorded or
	// no webhook/target is configured).
	Webhook *WatchState `json:"webhook,omitempty"`
}

// Status reports the account's schedule state for /v1/status, from Redis,
// without calling Zendesk.
func (r *Reconciler) Status(ctx context.Context) (Status, error) {
	s := Status{Account: r.Account(), Enabled: r.cfg.Interval > 0, IntervalSeconds: r.cfg.Interval.Seconds(), CheckpointAge: -1}
	cp, ok, err := r.Checkpoint(ctx)
	if err != nil {
		return s, err
	}
	if ok {
		s.Checkpoint = cp
		s.CheckpointAge = r.cfg.Now().Sub(cp).Round(time.Second).Seconds()
	}
	n, err := r.rdb.Exists(ctx, r.space.ReconcileLease()).Result()
	if err != nil {
		return s, fmt.Errorf("read reconcile lease: %w", err)
	}
	s.Running = n == 1
	if rw, ok, err := r.readRewind(ctx); err == nil && ok {
		s.PendingGapSince = rw
	}
	if b, err := r.rdb.Get(ctx, r.space.ReconcileLastRun()).Bytes(); err == nil {
		var rep Report
		if json.Unmarshal(b, &rep) == nil {
			s.LastRun = &rep
		}
	}
	if st, ok, err := r.guardian.LastCheck(ctx); err == nil && ok && st.Kind != "" {
		s.Webhook = &st
	}
	return s, nil
}
