package relay_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk"
)

// Environment of a child worker process (TestMain runs it instead of the
// tests): the SIGKILL test re-executes the test binary as a relay worker.
const (
	envChild      = "DESKRELAY_RELAY_TEST_CHILD"
	envChildRedis = "DESKRELAY_RELAY_TEST_REDIS"
	envChildZD    = "DESKRELAY_RELAY_TEST_ZENDESK"
	envChildEmail = "DESKRELAY_RELAY_TEST_EMAIL"
	envChildToken = "DESKRELAY_RELAY_TEST_TOKEN"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(runChild())
	}
	testutil.VerifyTestMain(m)
}

// runChild is a relay worker process: it serves the outbound queue until
// it is killed.
func runChild() int {
	addr := os.Getenv(envChildRedis)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	opt := asynq.RedisClientOpt{Addr: addr}
	lim := budget.NewLimiter(rdb, 6000)
	zd, err := zendesk.New(zendesk.Config{BaseURL: os.Getenv(envChildZD), Email: os.Getenv(envChildEmail),
		APIToken: os.Getenv(envChildToken), Timeout: 5 * time.Second, OnResponse: lim.Observe})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	cfg := fastConfig(relay.Config{})
	r, err := relay.New(cfg, relay.Deps{Redis: rdb, Asynq: opt, Zendesk: zd, Limiter: lim, Log: testLogger(nil)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	srv := queues.NewServer(opt, queues.ServerConfig{Concurrency: 10,
		Policy:       queues.Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: testRetryMaxDelay},
		PollInterval: 100 * time.Millisecond}, testLogger(nil))
	mux := asynq.NewServeMux()
	r.Register(mux)
	if err := srv.Start(mux); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
	srv.Shutdown()
	return 0
}

func startChild(t *testing.T, e *env, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envChildRedis+"="+addr, envChildZD+"="+e.fake.URL(),
		envChildEmail+"="+e.fake.Email(), envChildToken+"="+e.fake.APIToken())
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child worker: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func delivered(r *relay.Relay, all []string) int {
	n := 0
	for _, id := range all {
		if st, err := r.Status(context.Background(), id); err == nil && st.Status == "delivered" {
			n++
		}
	}
	return n
}

func TestCrashSafety(t *testing.T) {
	t.Parallel()
	t.Run("RedisRestartWithAOFLosesAndDuplicatesNothing", func(t *testing.T) {
		s := redistest.StartServer(t, redistest.ServerOptions{AppendOnly: true})
		e := newEnv(t, envOptions{rdb: s.Client(t), opt: s.AsynqOpt()})
		e.fake.SetLatency(10 * time.Millisecond)
		want, all := wantBodies(6, 8, "aof")
		enqueueAll(t, e.relay, all)
		testutil.WaitFor(t, 30*time.Second, func() bool { return delivered(e.relay, ids(all)) >= 8 }, "a part of the burst delivered")
		s.Restart(t)
		t.Logf("Redis restarted with %d of %d delivered", delivered(e.relay, ids(all)), len(all))
		waitStatus(t, e.relay, ids(all), "delivered", 120*time.Second)
		checkExactlyOnce(t, e.fake, want)
	})
}

// TestSIGKILL runs in parallel with the other parallel tests: most of it is
// waiting for asynq to recover the killed worker's tasks.
func TestSIGKILL(t *testing.T) {
	t.Parallel()
	t.Run("KilledWorkerLosesAndDuplicatesNothing", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits for asynq to recover the killed worker's tasks (lease expiry, about a minute)")
		}
		s := redistest.StartServer(t, redistest.ServerOptions{AppendOnly: true})
		e := newEnv(t, envOptions{rdb: s.Client(t), opt: s.AsynqOpt(), noWorkers: true})
		e.fake.SetLatency(20 * time.Millisecond)
		// Writes take a while, so that the kill hits some mid-request.
		want, all := wantBodies(10, 6, "kill")
		enqueueAll(t, e.relay, all)
		child := startChild(t, e, s.Addr)
		testutil.WaitFor(t, 30*time.Second, func() bool { return delivered(e.relay, ids(all)) >= 10 }, "a part of the burst delivered")
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		killedAt := time.Now()
		t.Logf("worker killed with %d of %d delivered, %d writes in flight", delivered(e.relay, ids(all)), len(all), inFlightWrites(t, e))
		startChild(t, e, s.Addr)
		waitStatus(t, e.relay, ids(all), "delivered", 150*time.Second)
		t.Logf("all delivered %s after the kill", time.Since(killedAt).Round(time.Second))
		checkExactlyOnce(t, e.fake, want)
	})
}

// inFlightWrites counts messages whose last Zendesk write has no known
// outcome (the kill cut it).
func inFlightWrites(t *testing.T, e *env) int {
	ctx := context.Background()
	ks, err := e.rdb.Keys(ctx, keys.Default.Prefix()+"msg:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range ks {
		if v, _ := e.rdb.HGet(ctx, k, "write").Result(); v != "" {
			n++
		}
	}
	return n
}
