package redistest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of three masters (no replicas), each a private
// redis-server process on a loopback port.
type Cluster struct {
	Addrs []string // the masters' host:port
	Nodes []*Server
}

// clusterReady is how long the cluster may take to agree (cluster_state:ok
// on every node) after redis-cli --cluster create.
const clusterReady = 30 * time.Second

// needTools skips tb (or fails it under DESKRELAY_TEST_REQUIRE_REDIS=1)
// unless redis-server and redis-cli are installed; what says what for.
func needTools(tb testing.TB, what string) {
	tb.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			if Required() {
				tb.Fatalf("redistest: %s needs %s, not found, but %s=1", what, bin, EnvRequire)
			}
			tb.Skipf("redistest: %s needs %s, and none is installed (Debian: redis-server, redis-tools)", what, bin)
		}
	}
}

// StartCluster starts three cluster-enabled redis-server processes on free
// ports, joins them with redis-cli --cluster create (the 16384 slots split
// among the three masters), waits until every node says cluster_state:ok,
// and stops them when tb ends. Without redis-server or redis-cli the test is
// skipped, saying why, or fails under DESKRELAY_TEST_REQUIRE_REDIS=1.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	needTools(tb, "a Redis Cluster")
	dir := tb.TempDir()
	c := &Cluster{}
	for range 3 {
		port := freePort(tb)
		p := strconv.Itoa(port)
		s := StartServer(tb, ServerOptions{Args: []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-"+p+".conf"),
			"--cluster-port", strconv.Itoa(freePort(tb)),
			"--cluster-node-timeout", "5000",
		}})
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), clusterReady)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitReady(tb)
	return c
}

// waitReady waits until every node reports cluster_state:ok and knows all
// three masters.
func (c *Cluster) waitReady(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(clusterReady)
	for _, s := range c.Nodes {
		cl := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
		for {
			info, err := cl.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if time.Now().After(deadline) {
				_ = cl.Close()
				tb.Fatalf("redistest: cluster node %s not ready within %s: %v\n%s", s.Addr, clusterReady, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = cl.Close()
	}
}

// URL is the redis-cluster:// URL of the cluster (DESKRELAY_REDIS_URL).
func (c *Cluster) URL() string { return "redis-cluster://" + strings.Join(c.Addrs, ",") }

// Options returns go-redis cluster options.
func (c *Cluster) Options() *redis.ClusterOptions {
	return &redis.ClusterOptions{Addrs: append([]string(nil), c.Addrs...)}
}

// AsynqOpt returns asynq connection options for the cluster.
func (c *Cluster) AsynqOpt() asynq.RedisClusterClientOpt {
	return asynq.RedisClusterClientOpt{Addrs: append([]string(nil), c.Addrs...)}
}

// Client returns a go-redis cluster client closed when tb ends.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	cl := redis.NewClusterClient(c.Options())
	tb.Cleanup(func() { _ = cl.Close() })
	return cl
}

// Sentinel is a Redis Sentinel process watching one master.
type Sentinel struct {
	Addr   string
	Master string // the monitored master's name
	server *Server
}

// StartSentinel starts a sentinel on a free port that monitors master under
// the name name (quorum 1), waits until it reports the master, and stops it
// when tb ends. It skips or fails like StartCluster.
func StartSentinel(tb testing.TB, master *Server, name string) *Sentinel {
	tb.Helper()
	needTools(tb, "a Redis Sentinel")
	dir := tb.TempDir()
	host, port, _ := net.SplitHostPort(master.Addr)
	conf := filepath.Join(dir, "sentinel.conf")
	body := "sentinel monitor " + name + " " + host + " " + port + " 1\n"
	if master.opts.Password != "" {
		body += "sentinel auth-pass " + name + " " + master.opts.Password + "\n"
	}
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		tb.Fatalf("redistest: sentinel config: %v", err)
	}
	s := StartServer(tb, ServerOptions{ConfigFile: conf, Args: []string{"--sentinel"}})
	sn := &Sentinel{Addr: s.Addr, Master: name, server: s}
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		addr, err := c.GetMasterAddrByName(context.Background(), name).Result()
		if err == nil && len(addr) == 2 && net.JoinHostPort(addr[0], addr[1]) == master.Addr {
			return sn
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: sentinel %s does not report master %s within 10s: %v %v", s.Addr, name, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is the redis-sentinel:// URL of the sentinel (DESKRELAY_REDIS_URL).
func (s *Sentinel) URL() string { return "redis-sentinel://" + s.Addr + "?master=" + s.Master }
