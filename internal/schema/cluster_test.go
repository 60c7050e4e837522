package schema_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/schema"
)

// On a Redis Cluster, Migrate records the layout: the previous release never
// ran on a cluster, so there is nothing to move; it looks on every master
// all the same, and runs once.
func TestMigrateOnCluster(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.StartCluster(t).Client(t)
	must(t, rdb.Set(ctx, keys.Default.ReconcileCheckpoint(), "1700000000", 0).Err())

	rep, err := schema.Migrate(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if rep.From != 0 || rep.To != schema.Version || rep.Renamed != 0 {
		t.Fatalf("report = %+v, want from 0 to %d, nothing moved", rep, schema.Version)
	}
	if v := rdb.Get(ctx, "deskrelay:schema").Val(); v != strconv.Itoa(schema.Version) {
		t.Fatalf("layout recorded = %q, want %d", v, schema.Version)
	}
	again, err := schema.Migrate(ctx, rdb)
	if err != nil || again.From != schema.Version {
		t.Fatalf("second run = %+v, %v; want a no-op", again, err)
	}
}

// Layout-0 keys carried into a cluster (redis-cli --cluster import of an
// unmigrated server) live on other slots than their new names: they are
// moved all the same (TTLs kept, nothing overwritten).
func TestMigrateOnClusterMovesAcrossSlots(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.StartCluster(t).Client(t)
	old := map[string]string{}
	for i, id := range []string{"m1", "m2", "m3", "m4", "m5", "m6"} {
		k := "deskrelay:msg:" + id
		must(t, rdb.HSet(ctx, k, "status", "queued", "n", i).Err())
		old[k] = keys.Default.Message(id)
	}
	must(t, rdb.Set(ctx, "deskrelay:conv:c1:ticket", "1001", time.Hour).Err())
	must(t, rdb.Set(ctx, "deskrelay:ledger:e1", "old", 0).Err())
	must(t, rdb.Set(ctx, keys.Default.EventLedger("e1"), "new", 0).Err())
	if onOneMaster(ctx, t, rdb, "deskrelay:msg:*") {
		t.Fatal("the layout-0 keys all hash to one master: the test moves nothing across nodes")
	}

	rep, err := schema.Migrate(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Renamed != 7 || len(rep.Skipped) != 1 {
		t.Fatalf("report = %+v, want 7 moved, 1 skipped", rep)
	}
	for from, to := range old {
		if got := rdb.HGet(ctx, to, "status").Val(); got != "queued" {
			t.Errorf("%s → %s: status %q, want queued", from, to, got)
		}
		if n := rdb.Exists(ctx, from).Val(); n != 0 {
			t.Errorf("%s left behind", from)
		}
	}
	if ttl := rdb.TTL(ctx, keys.Default.ConversationTicket("c1")).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("TTL after the move = %s, want kept (<= 1h)", ttl)
	}
	if got := rdb.Get(ctx, keys.Default.EventLedger("e1")).Val(); got != "new" {
		t.Errorf("a key of this release overwritten: %q", got)
	}
}

// onOneMaster reports whether every key matching pattern is on one master.
func onOneMaster(ctx context.Context, t *testing.T, rdb *redis.ClusterClient, pattern string) bool {
	t.Helper()
	var holders atomic.Int32 // ForEachMaster calls at once
	must(t, rdb.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		ks, err := n.Keys(ctx, pattern).Result()
		if len(ks) > 0 {
			holders.Add(1)
		}
		return err
	}))
	return holders.Load() <= 1
}
