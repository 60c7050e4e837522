package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/relay"
)

// failByHand turns a queued message into a failed one as a failed delivery
// leaves it (kept for replay), and removes its task.
func failByHand(tb testing.TB, e *env, m relay.Message, taskIDs ...string) {
	tb.Helper()
	ctx := context.Background()
	_, err := e.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, keys.Default.Message(m.ID), "state", relay.StateFailed, "reason", relay.ReasonInvalid, "attempts", 1,
			"last_error", "zendesk create ticket: 400 invalid", "done_at", time.Now().UnixMilli())
		p.ZRem(ctx, keys.Default.ConversationPending(m.ConversationID), m.ID)
		p.ZAdd(ctx, keys.Default.Failed(queues.Outbound), redis.Z{Score: float64(time.Now().UnixMilli()), Member: m.ID})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	for _, id := range taskIDs {
		_ = e.insp.DeleteTask(queues.Outbound, id)
	}
}

// Task ids live where message ids cannot reach: a message whose id looks
// like another's replay ("x:r1") does not take the replay's task id.
func TestReplayTaskIDsDoNotCollide(t *testing.T) {
	e := newEnv(t, envOptions{noWorkers: true})
	ctx := context.Background()
	failed := msg("collide-a", 1)
	failed.ID = "x"
	lookalike := msg("collide-b", 1)
	lookalike.ID = "x:r1"
	mustEnqueue(t, e.relay, failed)
	mustEnqueue(t, e.relay, lookalike)
	failByHand(t, e, failed, "msg:x", "msg{x}")
	if _, err := e.insp.GetTaskInfo(queues.Outbound, "msg{x}"); err == nil {
		t.Fatal("the failed message's task is still there")
	}
	sum, err := e.relay.Replay(ctx, relay.ReplayOptions{})
	if err != nil || sum.Replayed != 1 {
		t.Fatalf("replay = %+v, %v; want 1 replayed", sum, err)
	}
	startWorkers(t, e.opt, e.relay, 2, time.Second)
	waitStatus(t, e.relay, []string{failed.ID, lookalike.ID}, relay.StateDelivered, 20*time.Second)
}

// A task queued by the previous release (task id "msg:<id>") is still
// delivered, and a replay after it removes its archived task.
func TestLegacyTaskIDs(t *testing.T) {
	e := newEnv(t, envOptions{})
	m := msg("legacy", 1)
	plantLegacy(t, e, m, 1)
	waitStatus(t, e.relay, []string{m.ID}, relay.StateDelivered, 20*time.Second)
	checkExactlyOnce(t, e.fake, map[string][]string{"legacy": {m.Body}})
}
