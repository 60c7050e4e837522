package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
)

// DefaultLedgerRetention is how long event and invocation ids are
// remembered when the configuration says nothing: longer than Zendesk keeps
// invocations (7 days) and than any reconcile window.
const DefaultLedgerRetention = 14 * 24 * time.Hour

// Ledger is the dedupe record of events handed to the sink queue, keyed by
// event id (keys.EventLedger), and of webhook invocations processed
// (keys.InvocationLedger). Entries expire after the retention.
//
// Every write of keys.EventLedger goes through it. The Publisher marks an
// event only after its delivery task exists (asynq's
// task id is the atomic claim while the task lives), and the delivery task
// marks it again when it succeeds, so an id is never marked without its
// event having been made durable.
type Ledger struct {
	rdb       redis.UniversalClient
	space     keys.Space
	retention time.Duration
}

// NewLedger returns the default account's ledger on rdb; retention <= 0
// means DefaultLedgerRetention.
func NewLedger(rdb redis.UniversalClient, retention time.Duration) *Ledger {
	return NewLedgerIn(rdb, keys.Default, retention)
}

// NewLedgerIn returns account sp's ledger on rdb (the zero Space:
// keys.Default); retention <= 0 means DefaultLedgerRetention.
func NewLedgerIn(rdb redis.UniversalClient, sp keys.Space, retention time.Duration) *Ledger {
	if retention <= 0 {
		retention = DefaultLedgerRetention
	}
	return &Ledger{rdb: rdb, space: spaceOr(sp), retention: retention}
}

// spaceOr is sp, or keys.Default for the zero Space.
func spaceOr(sp keys.Space) keys.Space {
	if sp.Account() == "" {
		return keys.Default
	}
	return sp
}

// Seen reports whether the event id is in the ledger.
func (l *Ledger) Seen(ctx context.Context, eventID string) (bool, error) {
	n, err := l.rdb.Exists(ctx, l.space.EventLedger(eventID)).Result()
	if err != nil {
		return false, fmt.Errorf("ledger: look up %s: %w", eventID, err)
	}
	return n == 1, nil
}

// Mark records the event id (again), restarting its retention.
func (l *Ledger) Mark(ctx context.Context, eventID string) error {
	if err := l.markIn(ctx, l.rdb, eventID, time.Now()).Err(); err != nil {
		return fmt.Errorf("ledger: mark %s: %w", eventID, err)
	}
	return nil
}

// markIn is Mark as part of a transaction (p) that also moves the event in
// its conversation's order; at is when.
func (l *Ledger) markIn(ctx context.Context, p redis.Cmdable, eventID string, at time.Time) *redis.StatusCmd {
	return p.Set(ctx, l.space.EventLedger(eventID), at.Unix(), l.retention)
}

// InvocationSeen reports whether a webhook invocation was fully processed.
func (l *Ledger) InvocationSeen(ctx context.Context, invocationID string) (bool, error) {
	n, err := l.rdb.Exists(ctx, l.space.InvocationLedger(invocationID)).Result()
	if err != nil {
		return false, fmt.Errorf("ledger: look up invocation %s: %w", invocationID, err)
	}
	return n == 1, nil
}

// MarkInvocation records that every event of a webhook invocation was
// published (call it after publishing them, never before).
func (l *Ledger) MarkInvocation(ctx context.Context, invocationID string) error {
	if err := l.rdb.Set(ctx, l.space.InvocationLedger(invocationID), time.Now().Unix(), l.retention).Err(); err != nil {
		return fmt.Errorf("ledger: mark invocation %s: %w", invocationID, err)
	}
	return nil
}
