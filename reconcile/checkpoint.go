package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	redislease "github.com/deskrelay/deskrelay/internal/lease"
)

// checkpoint names one of the scheduled run's positions in Redis, kept as
// unix seconds in the account's key space (checkpointKey): every event
// before it has been published. Backfill never reads or moves one.
type checkpoint int

const (
	// exportCheckpoint is where the next scheduled run reads the ticket
	// events export from (Reconciler.Checkpoint, /v1/status).
	exportCheckpoint checkpoint = iota
	// invocationsCheckpoint is where the next scheduled run lists the
	// webhook's invocations from. Its window ends at now, not now − Lag
	// (invocations.go): it runs ahead of exportCheckpoint, and the ledger
	// drops what both find.
	invocationsCheckpoint
)

// String names cp in errors.
func (cp checkpoint) String() string {
	if cp == invocationsCheckpoint {
		return "invocations checkpoint"
	}
	return "checkpoint"
}

// key is cp's key in the account's key space s.
func (cp checkpoint) key(s keys.Space) string {
	if cp == invocationsCheckpoint {
		return s.ReconcileInvocationsCheckpoint()
	}
	return s.ReconcileCheckpoint()
}

// Checkpoint returns the scheduled checkpoint: every event before it has
// been published. ok is false when no run has set one yet.
func (r *Reconciler) Checkpoint(ctx context.Context) (time.Time, bool, error) {
	return r.readCheckpoint(ctx, exportCheckpoint)
}

// readCheckpoint reads cp; ok is false when it was never set.
func (r *Reconciler) readCheckpoint(ctx context.Context, cp checkpoint) (time.Time, bool, error) {
	return r.readUnix(ctx, cp.key(r.space))
}

// advanceScript moves KEYS[2] forward to ARGV[2] if the lease KEYS[1] still
// holds token ARGV[1]; -1 when the lease is lost, 0 when KEYS[2] was
// already there or further.
var advanceScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local cur = tonumber(redis.call('GET', KEYS[2]) or '-1')
if cur >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1`)

// advanceCheckpoint moves cp forward to at, only while the run holds its
// lease (errLeaseLost otherwise); it never moves a checkpoint back.
func (r *Reconciler) advanceCheckpoint(ctx context.Context, l *lease, cp checkpoint, at time.Time) error {
	n, err := advanceScript.Run(ctx, r.rdb, []string{r.space.ReconcileLease(), cp.key(r.space)}, l.token, at.Unix()).Int()
	if err != nil {
		return fmt.Errorf("move %s: %w", cp, err)
	}
	if n < 0 {
		return errLeaseLost
	}
	return nil
}

// readRewind returns the start of a gap the guardian found (a webhook it
// re-enabled), which the next scheduled run goes back to cover; ok is
// false when there is none.
func (r *Reconciler) readRewind(ctx context.Context) (time.Time, bool, error) {
	return r.readUnix(ctx, r.space.ReconcileRewind())
}

// rewindScript lowers KEYS[1] to ARGV[1] (or sets it).
var rewindScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
if cur >= 0 and cur <= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1`)

// rewind makes the next scheduled run start at since at the latest: a
// rewind already further back stays.
func (r *Reconciler) rewind(ctx context.Context, since time.Time) error {
	if err := rewindScript.Run(ctx, r.rdb, []string{r.space.ReconcileRewind()}, since.Unix()).Err(); err != nil {
		return fmt.Errorf("rewind the next reconcile run: %w", err)
	}
	return nil
}

// clearRewind drops the rewind a run has covered, unless the guardian moved
// it meanwhile (then the next run covers the new gap).
func (r *Reconciler) clearRewind(ctx context.Context, covered time.Time) error {
	if _, err := redislease.CompareAndDelete(ctx, r.rdb, r.space.ReconcileRewind(), strconv.FormatInt(covered.Unix(), 10)); err != nil {
		return fmt.Errorf("clear rewind: %w", err)
	}
	return nil
}

// readUnix reads a key holding unix seconds; ok is false when it is unset.
func (r *Reconciler) readUnix(ctx context.Context, key string) (time.Time, bool, error) {
	v, err := r.rdb.Get(ctx, key).Int64()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read %s: %w", key, err)
	}
	return time.Unix(v, 0).UTC(), true, nil
}
