package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// plantLegacy writes a message the way the previous release accepted it
// (before the intake rules): its record, its place in the conversation and
// its asynq task under the old task id "msg:<id>".
func plantLegacy(tb testing.TB, e *env, m relay.Message, pos int64) {
	tb.Helper()
	ctx := context.Background()
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	_, err = e.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, keys.Default.Message(m.ID), "state", "queued", "hash", "legacy", "conv", m.ConversationID,
			"msg", string(b), "pos", pos, "gen", 0, "attempts", 0, "accepted_at", time.Now().UnixMilli())
		p.ZAdd(ctx, keys.Default.ConversationPending(m.ConversationID), redis.Z{Score: float64(pos), Member: m.ID})
		p.HSet(ctx, keys.Default.ConversationOrder(m.ConversationID), "max", pos)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	c := asynq.NewClient(e.opt)
	defer c.Close()
	payload, _ := json.Marshal(map[string]any{"id": m.ID})
	if _, err := c.Enqueue(asynq.NewTask(relay.TypeMessage, payload), asynq.Queue(queues.Outbound), asynq.TaskID("msg:"+m.ID), asynq.MaxRetry(queues.MaxRetry)); err != nil {
		tb.Fatalf("enqueue legacy task: %v", err)
	}
}

// An error that belongs to one message fails that message alone (reason
// invalid) and never closes the outage gate: only Zendesk-wide symptoms do.
func TestPoisonMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gateOpen := func(t *testing.T, e *env) {
		t.Helper()
		rep, err := e.relay.Report(ctx)
		if err != nil || rep.Gate.State != relay.GateOpen || rep.Gate.Failures != 0 {
			t.Errorf("gate = %+v (%v), want open with no failures counted", rep.Gate, err)
		}
	}
	t.Run("UnsendableIDsFailAloneAndLeaveTheGateOpen", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		var poison []string
		for i, id := range []string{"p\u0001a", "p\u007fb", "p\u0001c", "p\u0002d", "p\u001fe", "p\u0001f"} {
			m := msg(fmt.Sprintf("poison%d", i), 1)
			m.ID = id
			plantLegacy(t, e, m, 1)
			poison = append(poison, id)
		}
		good := msg("healthy", 1)
		mustEnqueue(t, e.relay, good)
		waitStatus(t, e.relay, poison, relay.StateFailed, 20*time.Second)
		waitStatus(t, e.relay, []string{good.ID}, relay.StateDelivered, 20*time.Second)
		for _, id := range poison {
			st, _ := e.relay.Status(ctx, id)
			if st.Reason != relay.ReasonInvalid || st.Attempts != 1 {
				t.Errorf("%q = %+v, want failed invalid after one attempt", id, st)
			}
		}
		gateOpen(t, e)
	})
	t.Run("RejectedRequestFailsThatMessageAlone", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.fake.FailNext(1, http.StatusBadRequest, zendesktest.Matching(http.MethodPost, "/api/v2/tickets"))
		bad, good := msg("rejected", 1), msg("rejected", 2)
		enqueueAll(t, e.relay, []relay.Message{bad, good})
		waitStatus(t, e.relay, []string{bad.ID}, relay.StateFailed, 20*time.Second)
		waitStatus(t, e.relay, []string{good.ID}, relay.StateDelivered, 20*time.Second)
		gateOpen(t, e)
	})
	t.Run("ConflictsDoNotCloseTheGate", func(t *testing.T) {
		e := newEnv(t, envOptions{cfg: relay.Config{GateThreshold: 2}})
		e.fake.FailNext(4, http.StatusConflict, zendesktest.Matching(http.MethodPost, "/api/v2/tickets"))
		m := msg("conflicted", 1)
		mustEnqueue(t, e.relay, m)
		waitStatus(t, e.relay, []string{m.ID}, relay.StateDelivered, 30*time.Second)
		if n := e.fake.CountRequests(http.MethodGet, "/api/v2/users/me"); n != 0 {
			t.Errorf("%d gate probes, want none: a 409 is no outage", n)
		}
	})
}

// A ticket at Zendesk's maximum of comments takes no more: the conversation
// moves to a new ticket; no message fails.
func TestCommentLimitMovesToNewTicket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fake: zendesktest.Config{MaxComments: 2}})
	var all []relay.Message
	var want []string
	for i := 1; i <= 5; i++ {
		m := msg("full", i)
		all = append(all, m)
		want = append(want, m.Body)
		mustEnqueue(t, e.relay, m)
		waitStatus(t, e.relay, []string{m.ID}, relay.StateDelivered, 20*time.Second)
	}
	if got := conversationBodies(e.fake)["full"]; !slices.Equal(got, want) {
		t.Errorf("comments over the tickets = %q, want %q", got, want)
	}
	if n := len(e.fake.TicketsByExternalID("full")); n != 3 {
		t.Errorf("%d tickets, want 3 (2 comments each)", n)
	}
	last, _ := e.relay.Status(context.Background(), all[4].ID)
	if conv, ok, _ := e.relay.Tickets().ConversationOf(context.Background(), last.TicketID); !ok || conv != "full" {
		t.Errorf("the newest ticket's conversation = %q (%v), want full", conv, ok)
	}
}
