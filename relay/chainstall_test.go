package relay_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/relay"
)

// A task that read its message's record before another worker (a chain)
// delivered the message must not put the message back into its
// conversation's pending set: a finished message at the head holds up the
// whole conversation until a poll repairs it (the stall behind the
// benchmark's tail). Both ways a turn check rejoins: the pending set is
// empty, or its head is a later message.
func TestStaleTurnDoesNotRequeueFinished(t *testing.T) {
	e := newEnv(t, envOptions{noWorkers: true})
	ctx := context.Background()
	m1, m2 := msg("stale", 1), msg("stale", 2)
	mustEnqueue(t, e.relay, m1)
	mustEnqueue(t, e.relay, m2)
	pending := keys.Default.ConversationPending("stale")
	var turns []func(context.Context) (bool, error)
	for range 2 {
		f, err := e.relay.StaleTurn(ctx, m1.ID)
		if err != nil {
			t.Fatal(err)
		}
		turns = append(turns, f)
	}
	check := func(when string, turn func(context.Context) (bool, error)) {
		t.Helper()
		if ok, err := turn(ctx); ok || err != nil {
			t.Fatalf("%s: stale turn of the delivered %s = %v, %v; want not its turn", when, m1.ID, ok, err)
		}
		if _, err := e.rdb.ZScore(ctx, pending, m1.ID).Result(); !errors.Is(err, redis.Nil) {
			t.Fatalf("%s: delivered %s is back in the pending set (err %v)", when, m1.ID, err)
		}
	}
	if err := e.relay.FinishDelivered(ctx, m1.ID); err != nil {
		t.Fatal(err)
	}
	check("head is a later message", turns[0])
	if err := e.relay.FinishDelivered(ctx, m2.ID); err != nil {
		t.Fatal(err)
	}
	check("pending set empty", turns[1])
}

// Many conversations of several messages, posted at once and interleaved
// (as BenchmarkRelayOverhead posts them), are all delivered, in order and
// once, by their predecessors' chains and wake-ups: the turn poll (10m
// here) never has to step in. A message left to the poll fails the test
// (it cannot be delivered within the bound). The handler runs are counted:
// at most a few per message.
func TestChainNoStall(t *testing.T) {
	const convs, per, workers = 100, 6, 20
	// Unlimited: this test measures waiting for turns, not Zendesk's limits.
	e := newEnv(t, envOptions{unlimited: true, noWorkers: true, cfg: relay.Config{TurnPoll: 10 * time.Minute}})
	var runs atomic.Int64
	srv := queues.NewServer(e.opt, queues.ServerConfig{Concurrency: workers,
		Policy:          queues.Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: testRetryMaxDelay},
		ShutdownTimeout: 5 * time.Second, PollInterval: 100 * time.Millisecond}, testLogger(t))
	mux := asynq.NewServeMux()
	e.relay.Register(mux)
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		runs.Add(1)
		return mux.ProcessTask(ctx, task)
	})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	want := map[string][]string{}
	all := make([]relay.Message, convs*per)
	for i := range all {
		conv := fmt.Sprintf("stall%03d", i%convs)
		all[i] = msg(conv, i/convs+1)
	}
	for _, m := range all {
		want[m.ConversationID] = append(want[m.ConversationID], m.Body)
	}
	parallel(workers, len(all), func(i int) { mustEnqueue(t, e.relay, all[i]) })
	testutil.WaitFor(t, 60*time.Second, func() bool {
		return deliveredMetric(t, e) >= float64(len(all))
	}, "every message delivered without the turn poll")
	waitStatus(t, e.relay, ids(all), "delivered", 10*time.Second)
	checkExactlyOnce(t, e.fake, want)
	if n := runs.Load(); n > int64(3*len(all)) {
		t.Errorf("%d handler runs for %d messages, want at most 3 per message", n, len(all))
	}
	for c := range convs {
		conv := fmt.Sprintf("stall%03d", c)
		if n := e.rdb.ZCard(context.Background(), keys.Default.ConversationPending(conv)).Val(); n != 0 {
			t.Errorf("conversation %s: %d messages left pending", conv, n)
		}
	}
}
