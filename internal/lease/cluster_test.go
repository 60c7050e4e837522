package lease_test

import (
	"context"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/lease"
	"github.com/deskrelay/deskrelay/internal/redistest"
)

// On a Redis Cluster a lease (a key and two one-key scripts) works on every
// master: leases of several accounts, whose keys hash to different slots.
func TestLeaseOnCluster(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.StartCluster(t).Client(t)
	for _, account := range []string{"acme", "globex", "initech", "umbrella"} {
		key := keys.For(account).ReconcileLease()
		l, err := lease.Acquire(ctx, rdb, key, time.Minute)
		if err != nil || l == nil {
			t.Fatalf("%s: Acquire = %v, %v; want a lease", account, l, err)
		}
		if l2, err := lease.Acquire(ctx, rdb, key, time.Minute); err != nil || l2 != nil {
			t.Fatalf("%s: second Acquire = %v, %v; want nil, nil", account, l2, err)
		}
		if held, err := l.Extend(ctx); err != nil || !held {
			t.Fatalf("%s: Extend = %v, %v; want held", account, held, err)
		}
		if held, err := l.Held(ctx); err != nil || !held {
			t.Fatalf("%s: Held = %v, %v; want held", account, held, err)
		}
		if ok, err := lease.CompareAndDelete(ctx, rdb, key, "not-the-token"); err != nil || ok {
			t.Fatalf("%s: CompareAndDelete with another token = %v, %v; want kept", account, ok, err)
		}
		if ok, err := l.Release(ctx); err != nil || !ok {
			t.Fatalf("%s: Release = %v, %v; want released", account, ok, err)
		}
		if held, err := l.Extend(ctx); err != nil || held {
			t.Fatalf("%s: Extend after Release = %v, %v; want not held", account, held, err)
		}
	}
}
