package lease_test

import (
	"context"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/lease"
	"github.com/deskrelay/deskrelay/internal/redistest"
)

func TestLease(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.New(t).Client

	t.Run("SecondOwnerIsRefused", func(t *testing.T) {
		l, err := lease.Acquire(ctx, rdb, "k1", time.Minute)
		if err != nil || l == nil {
			t.Fatalf("Acquire = %v, %v; want a lease", l, err)
		}
		if l2, err := lease.Acquire(ctx, rdb, "k1", time.Minute); err != nil || l2 != nil {
			t.Fatalf("second Acquire = %v, %v; want nil, nil", l2, err)
		}
		if ok, err := l.Release(ctx); err != nil || !ok {
			t.Fatalf("Release = %v, %v; want true", ok, err)
		}
		if l3, err := lease.Acquire(ctx, rdb, "k1", time.Minute); err != nil || l3 == nil {
			t.Fatalf("Acquire after Release = %v, %v; want a lease", l3, err)
		}
	})

	t.Run("ExtendRenewsTheTTL", func(t *testing.T) {
		l, err := lease.Acquire(ctx, rdb, "k2", time.Second)
		if err != nil || l == nil {
			t.Fatalf("Acquire = %v, %v", l, err)
		}
		if err := rdb.PExpire(ctx, "k2", 100*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		if held, err := l.Extend(ctx); err != nil || !held {
			t.Fatalf("Extend = %v, %v; want true", held, err)
		}
		if ttl := rdb.PTTL(ctx, "k2").Val(); ttl < 500*time.Millisecond {
			t.Fatalf("TTL after Extend = %s, want about 1s", ttl)
		}
	})

	t.Run("LostLeaseIsNeitherExtendedNorReleased", func(t *testing.T) {
		l, err := lease.Acquire(ctx, rdb, "k3", time.Minute)
		if err != nil || l == nil {
			t.Fatalf("Acquire = %v, %v", l, err)
		}
		if err := rdb.Set(ctx, "k3", "someone-else", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if held, err := l.Held(ctx); err != nil || held {
			t.Fatalf("Held = %v, %v; want false", held, err)
		}
		if held, err := l.Extend(ctx); err != nil || held {
			t.Fatalf("Extend = %v, %v; want false", held, err)
		}
		if ok, err := l.Release(ctx); err != nil || ok {
			t.Fatalf("Release = %v, %v; want false", ok, err)
		}
		if v := rdb.Get(ctx, "k3").Val(); v != "someone-else" {
			t.Fatalf("k3 = %q, want the other owner's value kept", v)
		}
	})

	t.Run("CompareAndDeleteOnlyOnMatch", func(t *testing.T) {
		if err := rdb.Set(ctx, "k4", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if ok, err := lease.CompareAndDelete(ctx, rdb, "k4", "other"); err != nil || ok {
			t.Fatalf("CompareAndDelete(other) = %v, %v; want false", ok, err)
		}
		if ok, err := lease.CompareAndDelete(ctx, rdb, "k4", "v"); err != nil || !ok {
			t.Fatalf("CompareAndDelete(v) = %v, %v; want true", ok, err)
		}
	})
}
