package redistest

import (
	"context"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The cluster has three masters that split the slots, and a cluster client
// reaches keys on every one of them.
func TestStartClusterThreeMasters(t *testing.T) {
	c := StartCluster(t)
	ctx := context.Background()
	cl := c.Client(t)
	masters := 0
	if err := cl.ForEachMaster(ctx, func(context.Context, *redis.Client) error {
		masters++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if masters != 3 {
		t.Fatalf("masters = %d, want 3", masters)
	}
	for i := range 30 {
		k := "k" + strconv.Itoa(i)
		if err := cl.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	perNode := map[string]int64{}
	if err := cl.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		size, err := n.DBSize(ctx).Result()
		perNode[n.Options().Addr] = size
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
