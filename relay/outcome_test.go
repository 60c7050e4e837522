package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/relay"
)

// outcomeEnv is a relay whose outcomes go to a real sink.Outcomes; the
// inbound queue is paused, so the sink tasks stay there to be read.
func outcomeEnv(t *testing.T, send string, wrap func(relay.OutcomeSink) relay.OutcomeSink) *env {
	t.Helper()
	db := redistest.New(t)
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	if err := insp.PauseQueue(queues.Inbound); err != nil {
		t.Fatal(err)
	}
	o, err := sink.NewOutcomes(db.Client, sink.OutcomesConfig{Send: send})
	if err != nil {
		t.Fatal(err)
	}
	var out relay.OutcomeSink = o
	if wrap != nil {
		out = wrap(o)
	}
	return newEnv(t, envOptions{rdb: db.Client, opt: db.AsynqOpt(), outcomes: out})
}

// sinkOutcomes returns the outcome events waiting on the inbound queue.
func sinkOutcomes(t *testing.T, e *env) []sink.Outcome {
	t.Helper()
	tasks, err := e.insp.ListPendingTasks(queues.Inbound)
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	var out []sink.Outcome
	for _, task := range tasks {
		var pl sink.DeliverPayload
		if err := json.Unmarshal(task.Payload, &pl); err != nil || pl.Outcome == nil {
			t.Fatalf("inbound task %s: %s is no outcome (%v)", task.ID, task.Payload, err)
		}
		out = append(out, *pl.Outcome)
	}
	slices.SortFunc(out, func(a, b sink.Outcome) int { return a.OccurredAt.Compare(b.OccurredAt) })
	return out
}

// waitOutcomes waits until n outcome events are published and the
// messages' tasks are done (a task tells its outcome before it ends), and
// returns the outcome events, failing unless there are exactly n.
func waitOutcomes(t *testing.T, e *env, n int) []sink.Outcome {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, func() bool {
		if len(sinkOutcomes(t, e)) < n {
			return false
		}
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			e.insp.ListPendingTasks, e.insp.ListActiveTasks, e.insp.ListScheduledTasks, e.insp.ListRetryTasks,
		} {
			tasks, err := list(queues.Outbound)
			if err != nil || slices.ContainsFunc(tasks, func(t *asynq.TaskInfo) bool { return t.Type == relay.TypeMessage }) {
				return false
			}
		}
		return true
	}, "the messages' tasks to end")
	got := sinkOutcomes(t, e)
	if len(got) != n {
		t.Fatalf("%d outcome events, want %d: %+v", len(got), n, got)
	}
	return got
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("DeliveredToldWhenAsked", func(t *testing.T) {
		e := outcomeEnv(t, sink.SendDelivered, nil)
		m := msg("told", 1)
		mustEnqueue(t, e.relay, m)
		waitStatus(t, e.relay, []string{m.ID}, relay.StateDelivered, 20*time.Second)
		st, _ := e.relay.Status(ctx, m.ID)
		got := waitOutcomes(t, e, 1)[0]
		if got.Type != sink.TypeMessageDelivered || got.ID != "msg:told-m01:delivered" || got.MessageID != m.ID ||
			got.ConversationID != "told" || got.Account != "default" || got.TicketID != st.TicketID ||
			got.CommentID != st.CommentID || got.CommentID == 0 || got.OccurredAt.IsZero() {
			t.Fatalf("outcome %+v, want message.delivered of %+v", got, st)
		}
	})
	t.Run("DeliveredNotToldByDefault", func(t *testing.T) {
		e := outcomeEnv(t, "", nil)
		m := msg("quiet", 1)
		mustEnqueue(t, e.relay, m)
		waitStatus(t, e.relay, []string{m.ID}, relay.StateDelivered, 20*time.Second)
		waitOutcomes(t, e, 0)
	})
	t.Run("FailedOncePerReplayGeneration", func(t *testing.T) {
		e := outcomeEnv(t, "", nil)
		e.fake.RevokeCredentials()
		m := msg("refused", 1)
		mustEnqueue(t, e.relay, m)
		waitStatus(t, e.relay, []string{m.ID}, relay.StateFailed, 20*time.Second)
		first := waitOutcomes(t, e, 1)[0]
		if first.Type != sink.TypeMessageFailed || first.ID != "msg:refused-m01:failed:0" || first.Reason != relay.ReasonUnauthorized ||
			first.LastError == "" || first.ConversationID != "refused" || first.TicketID != 0 {
			t.Fatalf("outcome %+v, want message.failed unauthorized in generation 0", first)
		}
		// replayed while the credentials are still wrong: a second failure
		if sum, err := e.relay.Replay(ctx, relay.ReplayOptions{}); err != nil || sum.Replayed != 1 {
			t.Fatalf("replay = %+v, %v", sum, err)
		}
		got := waitOutcomes(t, e, 2)
		if got[1].ID != "msg:refused-m01:failed:1" || got[1].Reason != relay.ReasonUnauthorized {
			t.Fatalf("second outcome %+v, want message.failed in generation 1", got[1])
		}
	})
	t.Run("ToldAgainAfterACrashNotTwice", func(t *testing.T) {
		// The first telling of each outcome is lost after it was published
		// (a crash, or Redis failing as it answered): the task runs again,
		// finds the message finished and tells it again.
		var flaky *lostAnswer
		e := outcomeEnv(t, sink.SendDelivered, func(o relay.OutcomeSink) relay.OutcomeSink {
			flaky = &lostAnswer{next: o, lost: map[string]bool{}}
			return flaky
		})
		m := msg("crash", 1)
		mustEnqueue(t, e.relay, m)
		waitStatus(t, e.relay, []string{m.ID}, relay.StateDelivered, 20*time.Second)
		testutil.WaitFor(t, 20*time.Second, func() bool { return flaky.calls() >= 2 }, "the outcome told again")
		if got := waitOutcomes(t, e, 1); got[0].ID != "msg:crash-m01:delivered" {
			t.Fatalf("outcomes %+v, want one message.delivered", got)
		}
	})
}

// TestOutcomeToldBeforeReplay: a failure whose telling was lost, and whose
// task is gone too (so nothing would tell it again), is told by the replay
// before the next generation runs.
func TestOutcomeToldBeforeReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	down := &downSink{down: true}
	e := outcomeEnv(t, "", func(o relay.OutcomeSink) relay.OutcomeSink { down.next = o; return down })
	e.fake.RevokeCredentials()
	m := msg("untold", 1)
	mustEnqueue(t, e.relay, m)
	waitStatus(t, e.relay, []string{m.ID}, relay.StateFailed, 20*time.Second)
	testutil.WaitFor(t, 20*time.Second, func() bool {
		tasks, _ := e.insp.ListRetryTasks(queues.Outbound)
		for _, task := range tasks {
			if task.Type == relay.TypeMessage && e.insp.DeleteTask(queues.Outbound, task.ID) == nil {
				return true
			}
		}
		return false
	}, "the failed message's task retrying its telling, to delete it")
	down.setDown(false)
	if sum, err := e.relay.Replay(ctx, relay.ReplayOptions{}); err != nil || sum.Replayed != 1 {
		t.Fatalf("replay = %+v, %v", sum, err)
	}
	got := waitOutcomes(t, e, 2)
	if got[0].ID != "msg:untold-m01:failed:0" || got[1].ID != "msg:untold-m01:failed:1" {
		t.Fatalf("outcomes %+v, want the failures of generations 0 and 1", got)
	}
}

// downSink fails every telling while down, publishing nothing.
type downSink struct {
	next relay.OutcomeSink
	mu   sync.Mutex
	down bool
}

func (d *downSink) setDown(v bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = v
}

func (d *downSink) PublishOutcome(ctx context.Context, o sink.Outcome) error {
	d.mu.Lock()
	down := d.down
	d.mu.Unlock()
	if down {
		return errors.New("redis: connection refused (simulated)")
	}
	return d.next.PublishOutcome(ctx, o)
}

// lostAnswer publishes every outcome but answers the first telling of each
// with an error, as if the process died right after publishing.
type lostAnswer struct {
	next relay.OutcomeSink
	mu   sync.Mutex
	lost map[string]bool
	n    int
}

func (l *lostAnswer) PublishOutcome(ctx context.Context, o sink.Outcome) error {
	if err := l.next.PublishOutcome(ctx, o); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if !l.lost[o.ID] {
		l.lost[o.ID] = true
		return errors.New("connection reset (simulated)")
	}
	return nil
}

func (l *lostAnswer) calls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
