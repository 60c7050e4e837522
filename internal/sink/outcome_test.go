package sink_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/internal/validate"
)

func TestOutcomeJSON(t *testing.T) {
	tests := []struct {
		name string
		o    sink.Outcome
		want string
	}{
		{"Failed", sink.MessageFailed("msg_1", "conv_42", 1, "unauthorized", "update ticket: 401", t0.Add(1500*time.Microsecond)),
			`{"type":"message.failed","id":"msg:msg_1:failed:1","message_id":"msg_1","conversation_id":"conv_42","account":"default",` +
				`"reason":"unauthorized","last_error":"update ticket: 401","occurred_at":"2026-11-24T10:05:00.001Z"}`},
		{"Delivered", sink.MessageDelivered("msg_1", "conv_42", 1001, 123456, t0),
			`{"type":"message.delivered","id":"msg:msg_1:delivered","message_id":"msg_1","conversation_id":"conv_42","account":"default",` +
				`"ticket_id":1001,"comment_id":123456,"occurred_at":"2026-11-24T10:05:00Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Account = keys.DefaultAccount // PublishOutcome sets it
			b, err := json.Marshal(tt.o)
			if err != nil || string(b) != tt.want {
				t.Fatalf("got  %s (%v)\nwant %s", b, err, tt.want)
			}
		})
	}
}

func TestOutcomesWants(t *testing.T) {
	tests := []struct {
		send                  string
		failed, delivered, ok bool
	}{
		{"", true, false, true},
		{sink.SendFailed, true, false, true},
		{sink.SendDelivered, true, true, true},
		{sink.SendNone, false, false, true},
		{"all", false, false, false},
	}
	db := newFixture(t, sink.PublisherConfig{}).db
	for _, tt := range tests {
		t.Run("Send="+tt.send, func(t *testing.T) {
			o, err := sink.NewOutcomes(db.Client, sink.OutcomesConfig{Send: tt.send})
			if !tt.ok {
				if fe := validate.Fields(err); len(fe) != 1 || fe[0].Field != "Send" {
					t.Fatalf("NewOutcomes(%q) = %v, want an error naming Send", tt.send, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := o.Wants(sink.TypeMessageFailed); got != tt.failed {
				t.Errorf("Wants(failed) = %v, want %v", got, tt.failed)
			}
			if got := o.Wants(sink.TypeMessageDelivered); got != tt.delivered {
				t.Errorf("Wants(delivered) = %v, want %v", got, tt.delivered)
			}
		})
	}
}

// TestPublishOutcomeOnce: the relay tells an outcome again after a crash
// between recording and telling; the sink gets one delivery task, while it
// waits (its task id) and after it is gone (the ledger).
func TestPublishOutcomeOnce(t *testing.T) {
	f := newFixture(t, sink.PublisherConfig{})
	ctx := context.Background()
	o, err := sink.NewOutcomes(f.db.Client, sink.OutcomesConfig{Send: sink.SendDelivered})
	if err != nil {
		t.Fatal(err)
	}
	ev := sink.MessageDelivered("msg_1", "conv_42", 1001, 5, t0)
	for range 2 {
		if err := o.PublishOutcome(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := pendingDeliveries(t, f); n != 1 {
		t.Fatalf("%d delivery tasks after telling twice, want 1", n)
	}
	if err := f.insp.DeleteTask(queues.Inbound, sink.DeliverTaskID(ev.ID)); err != nil {
		t.Fatal(err)
	}
	if err := o.PublishOutcome(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if n := pendingDeliveries(t, f); n != 0 {
		t.Fatalf("%d delivery tasks after telling again once delivered, want 0 (the ledger knows the id)", n)
	}
	if n, _ := f.db.Client.Exists(ctx, keys.Default.InboundOrder("conv_42")).Result(); n != 0 {
		t.Error("an outcome joined the conversation's delivery order")
	}

	// a new replay generation is a new event
	if err := o.PublishOutcome(ctx, sink.MessageFailed("msg_2", "conv_42", 0, "invalid", "422", t0)); err != nil {
		t.Fatal(err)
	}
	if err := o.PublishOutcome(ctx, sink.MessageFailed("msg_2", "conv_42", 1, "invalid", "422", t0)); err != nil {
		t.Fatal(err)
	}
	if n := pendingDeliveries(t, f); n != 2 {
		t.Fatalf("%d delivery tasks for two generations' failures, want 2", n)
	}
}

func pendingDeliveries(t *testing.T, f *fixture) int {
	t.Helper()
	tasks, err := f.insp.ListPendingTasks(queues.Inbound)
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	return len(tasks)
}

// sinkServer records the deliveries and answers with status.
type sinkServer struct {
	mu     sync.Mutex
	status int
	got    []http.Header
	bodies []string
}

func (s *sinkServer) answer(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

func (s *sinkServer) received() ([]http.Header, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got, s.bodies
}

func (s *sinkServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got, s.bodies = append(s.got, r.Header.Clone()), append(s.bodies, string(b))
	w.WriteHeader(s.status)

}

// TestDeliverOutcome: an outcome is posted at once, signed, with its id as
// webhook-id; one the sink refuses is archived and replayed like a ticket
// event.
func TestDeliverOutcome(t *testing.T) {
	f := newFixture(t, sink.PublisherConfig{})
	ctx := context.Background()
	srv := &sinkServer{status: http.StatusUnauthorized}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	logs := &testutil.SyncBuffer{}
	d, err := sink.NewDeliverer(sink.DeliverConfig{URL: hs.URL, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", OrderSettle: time.Hour},
		f.db.Client, publishers(f.pub), hs.Client(), zerolog.New(logs).Level(zerolog.InfoLevel), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := sink.MessageFailed("msg_1", "conv_42", 0, "unauthorized", "401", t0)
	o.Account = keys.DefaultAccount
	b, _ := json.Marshal(sink.DeliverPayload{Outcome: &o, PublishedAt: time.Now()})
	err = d.ProcessTask(ctx, asynq.NewTask(sink.TaskDeliver, b))
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("ProcessTask on a 401 = %v, want a failure (SkipRetry)", err)
	}
	want, _ := json.Marshal(o)
	headers, bodies := srv.received()
	if len(bodies) != 1 || bodies[0] != string(want) || headers[0].Get("webhook-id") != o.ID || headers[0].Get("webhook-signature") == "" {
		t.Fatalf("sink got %q (headers %v), want one signed %s", bodies, headers, want)
	}
	failed, err := sink.Failed(ctx, f.db.Client, keys.Default, time.Time{})
	if err != nil || len(failed) != 1 || failed[0].Outcome == nil || *failed[0].Outcome != o || failed[0].Reason != sink.ReasonUnauthorized {
		t.Fatalf("Failed = %+v, %v; want the outcome kept as unauthorized", failed, err)
	}
	rep, err := sink.Replay(ctx, f.db.Client, f.pub, sink.ReplayOptions{})
	if err != nil || rep.Replayed != 1 {
		t.Fatalf("Replay = %+v, %v; want 1 replayed", rep, err)
	}
	info, err := f.insp.GetTaskInfo(queues.Inbound, sink.DeliverTaskID(o.ID))
	if err != nil {
		t.Fatal(err)
	}
	srv.answer(http.StatusNoContent)
	if err := d.ProcessTask(ctx, asynq.NewTask(sink.TaskDeliver, info.Payload)); err != nil {
		t.Fatalf("replayed outcome: %v", err)
	}
	if _, bodies = srv.received(); len(bodies) != 2 || bodies[1] != string(want) {
		t.Fatalf("sink got %q after replay, want %s again", bodies, want)
	}
	// every delivery is logged at info, as every outbound delivery is
	if l := logs.String(); !strings.Contains(l, `"level":"info"`) || !strings.Contains(l, `"message":"delivered to sink"`) || !strings.Contains(l, `"event_id":"`+o.ID+`"`) {
		t.Errorf("no info line for the delivery; log:\n%s", l)
	}
	if seen, err := f.pub.Ledger().Seen(ctx, o.ID); err != nil || !seen {
		t.Errorf("ledger has %s = %v, %v; want true", o.ID, seen, err)
	}
	// posted at once despite OrderSettle, in no conversation's order
	if n, err := f.db.Client.Exists(ctx, keys.Default.InboundOrder("conv_42")).Result(); err != nil || n != 0 {
		t.Errorf("conversation order exists = %d, %v; want none", n, err)
	}
}

// publishers finds the given Publishers by their account.
func publishers(pubs ...*sink.Publisher) sink.Publishers {
	return func(account string) (*sink.Publisher, bool) {
		for _, p := range pubs {
			if p.Space().Account() == account {
				return p, true
			}
		}
		return nil, false
	}
}
