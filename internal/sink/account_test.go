package sink_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/sink"
)

var acme = keys.For("acme")

// acmeFixture adds the account acme to f: its Publisher, conv_42 linked to
// ticket 1001 in acme's record too.
func acmeFixture(t *testing.T, f *fixture) *sink.Publisher {
	t.Helper()
	if err := f.tickets.WithSpace(acme).Link(context.Background(), "conv_42", 1001); err != nil {
		t.Fatal(err)
	}
	return sink.NewPublisher(f.db.Client, f.tickets, sink.PublisherConfig{Space: acme})
}

// TestPublishPerAccount: the same Zendesk comment id in two accounts makes
// two events with ids of their own, each in its account's ledger.
func TestPublishPerAccount(t *testing.T) {
	f := newFixture(t, sink.PublisherConfig{})
	pubAcme := acmeFixture(t, f)
	ctx := context.Background()
	ev := comment(1001, 5, events.RoleAgent, true, t0)
	outDef, err := f.pub.Publish(ctx, ev)
	if err != nil || outDef.Result != events.ResultEnqueued {
		t.Fatalf("default: %v %v", outDef, err)
	}
	outAcme, err := pubAcme.Publish(ctx, ev)
	if err != nil || outAcme.Result != events.ResultEnqueued {
		t.Fatalf("acme: %v %v (the default account's ledger must not hold acme's event)", outAcme, err)
	}
	if outDef.Event.ID != "zd:comment:5" || outDef.Event.Account != "default" {
		t.Errorf("default's event %s of %q, want zd:comment:5 of default", outDef.Event.ID, outDef.Event.Account)
	}
	if outAcme.Event.ID != "zd:acme:comment:5" || outAcme.Event.Account != "acme" {
		t.Errorf("acme's event %s of %q, want zd:acme:comment:5 of acme", outAcme.Event.ID, outAcme.Event.Account)
	}
	for _, k := range []string{keys.Default.EventLedger("zd:comment:5"), acme.EventLedger("zd:acme:comment:5"), acme.InboundOrder("conv_42")} {
		if n, _ := f.db.Client.Exists(ctx, k).Result(); n != 1 {
			t.Errorf("%s missing", k)
		}
	}
	if n := pendingDeliveries(t, f); n != 2 {
		t.Errorf("%d delivery tasks, want 2", n)
	}
	info, err := f.insp.GetTaskInfo(queues.Inbound, sink.DeliverTaskID("zd:acme:comment:5"))
	if err != nil {
		t.Fatal(err)
	}
	var pl sink.DeliverPayload
	if err := json.Unmarshal(info.Payload, &pl); err != nil || pl.Account != "acme" || pl.Event.Account != "acme" {
		t.Errorf("acme's task payload %s (%v), want account acme", info.Payload, err)
	}
	again, err := pubAcme.Publish(ctx, outAcme.Event)
	if err != nil || again.String() != "duplicate: ledger" {
		t.Errorf("acme's event again: %v %v, want duplicate: ledger", again, err)
	}
	if _, err := pubAcme.Publish(ctx, outDef.Event); err == nil || !strings.Contains(err.Error(), `account "default"`) {
		t.Errorf("default's event to acme's publisher: %v, want an error naming the account", err)
	}
}

// TestResolveCommentPerAccount: the ledger look-up before reading Zendesk
// uses the account's event id.
func TestResolveCommentPerAccount(t *testing.T) {
	f := newFixture(t, sink.PublisherConfig{})
	pubAcme := acmeFixture(t, f)
	ctx := context.Background()
	if err := pubAcme.Ledger().Mark(ctx, "zd:acme:comment:10"); err != nil {
		t.Fatal(err)
	}
	pl := &events.Payload{TicketID: 1001, Status: "open", Comment: &events.CommentRef{ID: 10, AuthorID: 9}}
	ev, reason, err := pubAcme.ResolveComment(ctx, pl, &stubReader{}, events.SourceWebhook, t0)
	if err != nil || ev != nil || reason != events.ResolvedDuplicate {
		t.Fatalf("acme: %v %q %v, want a duplicate", ev, reason, err)
	}
}

// TestDeliverPerAccount: a delivery task runs with its account's keys; a
// task of the previous release (no account) is the default account's; a
// task of an account not configured waits.
func TestDeliverPerAccount(t *testing.T) {
	f := newFixture(t, sink.PublisherConfig{})
	pubAcme := acmeFixture(t, f)
	ctx := context.Background()
	srv := &sinkServer{status: http.StatusGone}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	d, err := sink.NewDeliverer(sink.DeliverConfig{URL: hs.URL, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		f.db.Client, publishers(f.pub, pubAcme), hs.Client(), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pubAcme.Publish(ctx, events.NewStatusEvent(1001, "pending", t0, events.SourceWebhook))
	if err != nil || out.Result != events.ResultEnqueued {
		t.Fatalf("publish: %v %v", out, err)
	}
	info, err := f.insp.GetTaskInfo(queues.Inbound, sink.DeliverTaskID(out.Event.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.ProcessTask(ctx, asynq.NewTask(sink.TaskDeliver, info.Payload)); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("ProcessTask on a 410 = %v, want a failure", err)
	}
	if _, bodies := srv.received(); len(bodies) != 1 || !strings.Contains(bodies[0], `"account":"acme"`) || !strings.Contains(bodies[0], `"id":"zd:acme:status:1001:pending:`) {
		t.Fatalf("sink got %q, want acme's event", bodies)
	}
	if failed, err := sink.Failed(ctx, f.db.Client, acme, time.Time{}); err != nil || len(failed) != 1 {
		t.Fatalf("acme's failed: %+v %v, want 1", failed, err)
	}
	if failed, err := sink.Failed(ctx, f.db.Client, keys.Default, time.Time{}); err != nil || len(failed) != 0 {
		t.Fatalf("default's failed: %+v %v, want none", failed, err)
	}
	if n, _ := f.db.Client.Exists(ctx, acme.InboundOrder("conv_42")).Result(); n != 0 {
		t.Error("acme's order still holds the failed event")
	}
	if rep, err := sink.Replay(ctx, f.db.Client, f.pub, sink.ReplayOptions{}); err != nil || rep.Found != 0 {
		t.Fatalf("default's replay: %+v %v, want nothing", rep, err)
	}
	if rep, err := sink.Replay(ctx, f.db.Client, pubAcme, sink.ReplayOptions{}); err != nil || rep.Replayed != 1 {
		t.Fatalf("acme's replay: %+v %v, want 1", rep, err)
	}

	// the previous release's task: no account anywhere
	srv.answer(http.StatusNoContent)
	old := events.NewStatusEvent(1001, "solved", t0, events.SourceWebhook)
	old.ConversationID = "conv_42"
	b, _ := json.Marshal(map[string]any{"event": old, "published_at": t0})
	if err := d.ProcessTask(ctx, asynq.NewTask(sink.TaskDeliver, b)); err != nil {
		t.Fatalf("previous release's task: %v", err)
	}
	if _, bodies := srv.received(); !strings.Contains(bodies[len(bodies)-1], `"account":"default"`) {
		t.Fatalf("sink got %s, want the default account's", bodies[len(bodies)-1])
	}
	if seen, _ := f.pub.Ledger().Seen(ctx, old.ID); !seen {
		t.Error("the default ledger does not hold the previous release's event")
	}

	b, _ = json.Marshal(sink.DeliverPayload{Account: "beta", Event: old, PublishedAt: t0})
	if err := d.ProcessTask(ctx, asynq.NewTask(sink.TaskDeliver, b)); err == nil || errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), `"beta"`) {
		t.Fatalf("an unknown account's task: %v, want a retried error naming it", err)
	}
}

// TestOutcomesPerAccount: an account's outcomes carry its name and ids of
// their own, deduped in its ledger.
func TestOutcomesPerAccount(t *testing.T) {
	f := newFixture(t, sink.PublisherConfig{})
	ctx := context.Background()
	def, err := sink.NewOutcomes(f.db.Client, sink.OutcomesConfig{Send: sink.SendDelivered})
	if err != nil {
		t.Fatal(err)
	}
	oAcme, err := sink.NewOutcomes(f.db.Client, sink.OutcomesConfig{Send: sink.SendDelivered, Space: acme})
	if err != nil {
		t.Fatal(err)
	}
	ev := sink.MessageDelivered("msg_1", "conv_42", 1001, 5, t0)
	for _, o := range []*sink.Outcomes{def, oAcme, oAcme} {
		if err := o.PublishOutcome(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := pendingDeliveries(t, f); n != 2 {
		t.Fatalf("%d delivery tasks, want 2 (one per account)", n)
	}
	const acmeID = "msg:{acme}:msg_1:delivered"
	info, err := f.insp.GetTaskInfo(queues.Inbound, sink.DeliverTaskID(acmeID))
	if err != nil {
		t.Fatal(err)
	}
	var pl sink.DeliverPayload
	if err := json.Unmarshal(info.Payload, &pl); err != nil || pl.Account != "acme" || pl.Outcome == nil || pl.Outcome.Account != "acme" {
		t.Fatalf("acme's outcome task %s (%v)", info.Payload, err)
	}
	if n, _ := f.db.Client.Exists(ctx, acme.EventLedger(acmeID)).Result(); n != 1 {
		t.Error("acme's ledger does not hold its outcome")
	}
}
