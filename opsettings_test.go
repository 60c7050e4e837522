package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
)

func TestOpsSettingsProblems(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want string // the start of a line on stderr
	}{
		{name: "ViewerAlone", set: map[string]string{"DESKRELAY_VIEWER_USER": "v"}, want: "DESKRELAY_VIEWER_PASSWORD: "},
		{name: "ViewerIsAdmin", set: map[string]string{"DESKRELAY_VIEWER_USER": "admin", "DESKRELAY_VIEWER_PASSWORD": "viewer-pw-SECRET9"}, want: "DESKRELAY_VIEWER_USER: must differ"},
		{name: "ViewerWithoutAdmin", set: map[string]string{"DESKRELAY_ADMIN_USER": "", "DESKRELAY_ADMIN_PASSWORD": "", "DESKRELAY_VIEWER_USER": "v", "DESKRELAY_VIEWER_PASSWORD": "viewer-pw-SECRET9"}, want: "DESKRELAY_VIEWER_USER: needs"},
		{name: "MetricsNotAnAddress", set: map[string]string{"DESKRELAY_METRICS_LISTEN": "9090"}, want: "DESKRELAY_METRICS_LISTEN: want host:port"},
		{name: "RedisPasswordTwice", set: map[string]string{"DESKRELAY_REDIS_URL": "redis://:a@127.0.0.1:6379/0", "DESKRELAY_REDIS_PASSWORD": "redis-pw-SECRET10"}, want: "DESKRELAY_REDIS_PASSWORD: DESKRELAY_REDIS_URL carries a password too"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := daemonEnv(t, "redis://127.0.0.1:6379/0", "http://127.0.0.1:1")
			for k, v := range tt.set {
				env[k] = v
			}
			var out, errb testutil.SyncBuffer
			// A setting the daemon does not refuse starts it: stop it then.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, []string{"serve"}, envFrom(env), &out, &errb)
			if exitStatus(err) != 2 {
				t.Fatalf("exit status = %d (%v), want 2", exitStatus(err), err)
			}
			if !strings.Contains("\n"+errb.String(), "\n"+tt.want) {
				t.Fatalf("stderr lacks a line starting %q:\n%s", tt.want, errb.String())
			}
			assertNoSecrets(t, env, errb.String()+out.String())
		})
	}
}

// TestRedisPasswordSetting: with DESKRELAY_REDIS_PASSWORD (docker-compose.yml
// gives it as DESKRELAY_REDIS_PASSWORD_FILE) deskrelay talks to a Redis that
// requires a password; without it, serve stops at start.
func TestRedisPasswordSetting(t *testing.T) {
	const pw = "redis-password-SECRET8"
	srv := redistest.StartServer(t, redistest.ServerOptions{Password: pw})
	env := daemonEnv(t, srv.URL(), newTestZendesk(t))
	env["DESKRELAY_REDIS_PASSWORD"] = pw

	base, logs, stop := startDaemon(t, env)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		code, _ := getStatus(t, base+"/readyz")
		return code == http.StatusOK
	}, "readyz 200 with the Redis password")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, env, logs.String())

	// Without it, serve cannot read the key layout and stops, saying why.
	delete(env, "DESKRELAY_REDIS_PASSWORD")
	var out testutil.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx, []string{"serve"}, envFrom(env), &out, &out); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("serve without the Redis password = %v, want a NOAUTH error", err)
	}
}
