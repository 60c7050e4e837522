package redistest

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The cluster has three masters that split the slots, and a cluster client
// reaches keys on every one of them.
func TestStartClusterThreeMasters(t *testing.T) {
	c := StartCluster(t)
	ctx := context.Background()
	cl := c.Client(t)
	var masters atomic.Int32 // ForEachMaster calls at once
	if err := cl.ForEachMaster(ctx, func(context.Context, *redis.Client) error {
		masters.Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if masters.Load() != 3 {
		t.Fatalf("masters = %d, want 3", masters.Load())
	}
	for i := range 30 {
		k := "k" + strconv.Itoa(i)
		if err := cl.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	perNode := map[string]int64{}
	var mu sync.Mutex
	if err := cl.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		size, err := n.DBSize(ctx).Result()
		mu.Lock()
		perNode[n.Options().Addr] = size
		mu.Unlock()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for addr, n := range perNode {
		if n == 0 {
			t.Errorf("master %s holds none of 30 keys: the slots are not spread (%v)", addr, perNode)
		}
	}
}

// A sentinel started by the helper names its master, and a failover client
// reaches it.
func TestStartSentinel(t *testing.T) {
	master := StartServer(t, ServerOptions{})
	s := StartSentinel(t, master, "deskrelay-master")
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.Master, SentinelAddrs: []string{s.Addr}})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "through-sentinel", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := master.Client(t).Get(ctx, "through-sentinel").Val(); got != "1" {
		t.Fatalf("master holds %q, want 1", got)
	}
}
