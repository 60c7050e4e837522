package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/redisconn"
	"github.com/deskrelay/deskrelay/internal/testutil"
)

// DESKRELAY_REDIS_URL=redis-cluster://… gives a cluster connection, and
// every kind of URL gets a pool for the workers plus the intake.
func TestClusterRedisURLSetting(t *testing.T) {
	pool := redisconn.PoolSize(32)
	tests := []struct {
		name, url string
		check     func(asynq.RedisConnOpt) bool
	}{
		{"Cluster", "redis-cluster://10.0.0.1:7000,10.0.0.2:7000", func(o asynq.RedisConnOpt) bool {
			c, ok := o.(redisconn.ClusterOpt)
			return ok && len(c.Addrs) == 2 && c.PoolSize == pool && c.Password == "pw"
		}},
		{"Server", "redis://10.0.0.1:6379/0", func(o asynq.RedisConnOpt) bool {
			c, ok := o.(asynq.RedisClientOpt)
			return ok && c.PoolSize == pool && c.Password == "pw"
		}},
		{"Sentinel", "redis-sentinel://10.0.0.1,10.0.0.2?master=main", func(o asynq.RedisConnOpt) bool {
			c, ok := o.(asynq.RedisFailoverClientOpt)
			return ok && c.MasterName == "main" && c.PoolSize == pool && c.Password == "pw"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := values{"DESKRELAY_REDIS_URL": tt.url, "DESKRELAY_CONCURRENCY": "32", "DESKRELAY_REDIS_PASSWORD": "pw"}
			var p problems
			opt := v.withRedisPassword(&p, v.redisOpt(&p))
			if len(p) != 0 || opt == nil || !tt.check(opt) {
				t.Fatalf("%s: opt %#v, problems %v", tt.url, opt, p)
			}
		})
	}
}

// A malformed cluster URL stops serve, naming DESKRELAY_REDIS_URL and what
// is wrong, and never shows the password.
func TestClusterRedisURLMalformed(t *testing.T) {
	for url, want := range map[string]string{
		"redis-cluster://:pw-SECRET@h1:7000,,h3":      "DESKRELAY_REDIS_URL: redis-cluster: host 2 is empty",
		"redis-cluster://:pw-SECRET@h1:7000/2":        "DESKRELAY_REDIS_URL: redis-cluster: a cluster has database 0 only",
		"redis-sentinel://:pw-SECRET@h1,h2":           "DESKRELAY_REDIS_URL: redis-sentinel: the master's name is missing",
		"redis-clustre://:pw-SECRET@h1:7000,h2:7000":  `DESKRELAY_REDIS_URL: unsupported scheme "redis-clustre"`,
		"rediss-cluster://:pw-SECRET%zz@h1:7000":      "DESKRELAY_REDIS_URL: rediss-cluster: malformed user or password",
		"redis-cluster://app:pw-SECRET@h1:7000?tls=1": `DESKRELAY_REDIS_URL: redis-cluster: unknown option "tls"`,
	} {
		env := daemonEnv(t, url, "http://127.0.0.1:1")
		var out, errb testutil.SyncBuffer
		// A URL wrongly accepted starts the daemon: stop it then.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := run(ctx, []string{"serve"}, envFrom(env), &out, &errb)
		cancel()
		if exitStatus(err) != 2 || !strings.Contains(errb.String(), want) {
			t.Errorf("%s: exit %d, stderr lacks %q:\n%s", want, exitStatus(err), want, errb.String())
		}
		if strings.Contains(errb.String()+out.String(), "pw-SECRET") {
			t.Errorf("%s: the password is shown:\n%s", want, errb.String())
		}
	}
}
