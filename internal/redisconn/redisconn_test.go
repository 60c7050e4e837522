package redisconn_test

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/redisconn"
	"github.com/deskrelay/deskrelay/internal/redistest"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, url string
		want      asynq.RedisConnOpt
	}{
		{"Server", "redis://:pw@10.0.0.1:6380/2",
			asynq.RedisClientOpt{Addr: "10.0.0.1:6380", Password: "pw", DB: 2, PoolSize: 7}},
		{"Socket", "redis-socket:///run/redis.sock?db=3",
			asynq.RedisClientOpt{Network: "unix", Addr: "/run/redis.sock", DB: 3, PoolSize: 7}},
		{"Sentinel", "redis-sentinel://:spw@s1:5000,s2?master=main",
			asynq.RedisFailoverClientOpt{MasterName: "main", SentinelAddrs: []string{"s1:5000", "s2:26379"}, SentinelPassword: "spw", PoolSize: 7}},
		{"Cluster", "redis-cluster://h1:7000,h2:7001,h3",
			cluster(redisconn.ClusterOpt{PoolSize: 7}, []string{"h1:7000", "h2:7001", "h3:6379"}, "", "")},
		{"ClusterWithUserAndEscapedPassword", "redis-cluster://app:p%40ss%2Fw@h1:7000/",
			cluster(redisconn.ClusterOpt{PoolSize: 7}, []string{"h1:7000"}, "app", "p@ss/w")},
		{"ClusterPasswordOnly", "redis-cluster://:pw@[::1]:7000,h2:7001/0",
			cluster(redisconn.ClusterOpt{PoolSize: 7}, []string{"[::1]:7000", "h2:7001"}, "", "pw")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := redisconn.Parse(tt.url, 7)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse = %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func cluster(o redisconn.ClusterOpt, addrs []string, user, pw string) redisconn.ClusterOpt {
	o.Addrs, o.Username, o.Password = addrs, user, pw
	return o
}

// TLS: rediss:// keeps asynq's server name; rediss-cluster:// leaves it to
// each node's address.
func TestParseTLS(t *testing.T) {
	opt, err := redisconn.Parse("rediss://:pw@cache.example:6380/0", 0)
	if err != nil {
		t.Fatal(err)
	}
	if o := opt.(asynq.RedisClientOpt); o.TLSConfig == nil || o.TLSConfig.ServerName != "cache.example" {
		t.Fatalf("rediss:// TLS = %+v, want server name cache.example", o.TLSConfig)
	}
	opt, err = redisconn.Parse("rediss-cluster://h1:7000,h2:7000", 0)
	if err != nil {
		t.Fatal(err)
	}
	if o := opt.(redisconn.ClusterOpt); o.TLSConfig == nil || o.TLSConfig.ServerName != "" {
		t.Fatalf("rediss-cluster:// TLS = %+v, want TLS without a fixed server name", o.TLSConfig)
	}
}

// A bad URL is refused saying what is wrong, and never repeats the password.
func TestParseRefusesWithoutEchoingThePassword(t *testing.T) {
	const pw = "hunter2-SECRET"
	tests := []struct{ name, url, want string }{
		{"NoScheme", "u:" + pw + "@host:6379", "not a valid URL"},
		{"UnknownScheme", "mysql://u:" + pw + "@x/1", `unsupported scheme "mysql"`},
		{"BadDatabase", "redis://:" + pw + "@h:6379/zero", "the database must be a number"},
		{"BadServerURL", "redis://:" + pw + "@h:6379/%zz", "malformed URL"},
		{"SentinelWithoutMaster", "redis-sentinel://:" + pw + "@s1,s2", "master's name is missing"},
		{"SentinelUnknownOption", "redis-sentinel://:" + pw + "@s1?master=m&db=2", `unknown option "db"`},
		{"ClusterNoHost", "redis-cluster://:" + pw + "@", "no host"},
		{"ClusterEmptyHost", "redis-cluster://:" + pw + "@h1:7000,,h3", "host 2 is empty"},
		{"ClusterBadPort", "redis-cluster://:" + pw + "@h1:7000,h2:http", "host 2 is not host:port"},
		{"ClusterPortTooLarge", "redis-cluster://:" + pw + "@h1:70000", "host 1 is not host:port"},
		{"ClusterDatabase", "redis-cluster://:" + pw + "@h1:7000/3", "database 0 only"},
		{"ClusterOption", "redis-cluster://:" + pw + "@h1:7000?db=1", `unknown option "db"`},
		{"ClusterBadEscape", "redis-cluster://:" + pw + "%zz@h1:7000", "malformed user or password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := redisconn.Parse(tt.url, 0)
			if err == nil {
				t.Fatalf("Parse(%s) accepted", tt.name)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error repeats the password: %q", err)
			}
		})
	}
}

func TestPoolSize(t *testing.T) {
	base := 10 * runtime.GOMAXPROCS(0)
	for _, tt := range []struct{ workers, want int }{{20, 20 + base}, {1, 1 + base}, {0, base}, {-5, base}} {
		if got := redisconn.PoolSize(tt.workers); got != tt.want {
			t.Errorf("PoolSize(%d) = %d, want %d", tt.workers, got, tt.want)
		}
	}
	// Every worker has a connection of its own beyond go-redis's default.
	if redisconn.PoolSize(50) <= 50 {
		t.Errorf("PoolSize(50) = %d leaves nothing for the intake", redisconn.PoolSize(50))
	}
}

func TestWithPassword(t *testing.T) {
	for _, raw := range []string{"redis://h:6379/0", "redis-sentinel://s1?master=m", "redis-cluster://h1,h2", "redis-socket:///tmp/r.sock"} {
		opt, _ := redisconn.Parse(raw, 0)
		got, err := redisconn.WithPassword(opt, "pw")
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if p := reflect.ValueOf(got).FieldByName("Password").String(); p != "pw" {
			t.Errorf("%s: password %q, want pw", raw, p)
		}
	}
	opt, _ := redisconn.Parse("redis-cluster://:a@h1", 0)
	if _, err := redisconn.WithPassword(opt, "b"); !errors.Is(err, redisconn.ErrTwoPasswords) {
		t.Errorf("a password in the URL and beside it: %v, want ErrTwoPasswords", err)
	}
	// The sentinels' password (in the URL) and the master's do not clash.
	opt, _ = redisconn.Parse("redis-sentinel://:a@s1?master=m", 0)
	if _, err := redisconn.WithPassword(opt, "b"); err != nil {
		t.Errorf("sentinel password and master password: %v", err)
	}
}

// A redis-cluster:// URL of a running cluster gives a cluster client that
// reaches every master, with the pool asked for.
func TestParseClusterConnects(t *testing.T) {
	c := redistest.StartCluster(t)
	opt, err := redisconn.Parse(c.URL(), 33)
	if err != nil {
		t.Fatal(err)
	}
	rdb, ok := opt.MakeRedisClient().(*redis.ClusterClient)
	if !ok {
		t.Fatalf("MakeRedisClient = %T, want *redis.ClusterClient", opt.MakeRedisClient())
	}
	defer rdb.Close()
	if rdb.Options().PoolSize != 33 {
		t.Errorf("pool size = %d, want 33", rdb.Options().PoolSize)
	}
	ctx := context.Background()
	var masters atomic.Int32 // ForEachMaster calls at once
	err = rdb.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		masters.Add(1)
		return n.Ping(ctx).Err()
	})
	if err != nil || masters.Load() != 3 {
		t.Fatalf("masters = %d, %v; want 3", masters.Load(), err)
	}
}

// A redis-sentinel:// URL still gives a failover client that finds the
// master through the sentinel.
func TestParseSentinelConnects(t *testing.T) {
	master := redistest.StartServer(t, redistest.ServerOptions{Password: "master-pw"})
	s := redistest.StartSentinel(t, master, "deskrelay")
	opt, err := redisconn.Parse(s.URL(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := opt.(asynq.RedisFailoverClientOpt); !ok {
		t.Fatalf("Parse(sentinel) = %T, want asynq.RedisFailoverClientOpt", opt)
	}
	opt, err = redisconn.WithPassword(opt, "master-pw")
	if err != nil {
		t.Fatal(err)
	}
	rdb := opt.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	if err := rdb.Set(context.Background(), "via-sentinel", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
}
