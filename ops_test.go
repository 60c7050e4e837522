package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/tickets"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// opsEnv is a valid environment for the one-shot commands against the fake.
func opsEnv(t *testing.T) (map[string]string, *zendesktest.Server) {
	t.Helper()
	db := redistest.New(t)
	zd := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	env := daemonEnv(t, db.URL(), zd.URL())
	return env, zd
}

func TestOneShotCommandsRejectBadFlags(t *testing.T) {
	env, _ := opsEnv(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "ReconcileNeedsSince", args: []string{"reconcile"}, want: "--since: required"},
		{name: "ReconcileBadSince", args: []string{"reconcile", "--since", "yesterday-ish"}, want: "--since:"},
		{name: "ReconcileBadUntil", args: []string{"reconcile", "--since", "2h", "--until", "soon"}, want: "--until:"},
		{name: "ReplayBadQueue", args: []string{"replay", "--queue", "sideways"}, want: `--queue: "sideways" is not a queue`},
		{name: "ReplayBadReason", args: []string{"replay", "--reason", "boredom"}, want: `--reason: "boredom"`},
		{name: "WebhookNeedsAction", args: []string{"webhook"}, want: "Usage: deskrelay webhook status|enable"},
		{name: "WebhookNeedsID", args: []string{"webhook", "status"}, want: "DESKRELAY_ZENDESK_WEBHOOK_ID: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, envFrom(env), &out, &errb)
			if exitStatus(err) != 2 {
				t.Fatalf("exit status = %d (%v), want 2; stderr: %s", exitStatus(err), err, errb.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("stderr = %q, want it to contain %q", errb.String(), tt.want)
			}
		})
	}
}

func TestReconcileCommandDryRunThenRun(t *testing.T) {
	db := redistest.New(t)
	// The fake's clock runs ten minutes behind, so that the agents' replies
	// below are old enough for the export (which hides the last minute).
	zd := zendesktest.NewServer(t, zendesktest.Config{
		Email: "agent@example.com", APIToken: "zd-api-token-SECRET1", ExportLag: -1,
		Now: func() time.Time { return time.Now().Add(-10 * time.Minute) },
	})
	env := daemonEnv(t, db.URL(), zd.URL())
	ticket := zd.CreateTicket(zendesk.NewTicket{Subject: "crash", ExternalID: "conv_7",
		Comment: zendesk.CommentInput{Body: "it crashes", Public: true}, Requester: &zendesk.Requester{Name: "Ann", Email: "ann@example.com"}})
	if err := tickets.New(db.Client).Link(context.Background(), "conv_7", ticket); err != nil {
		t.Fatal(err)
	}
	other := zd.CreateTicket(zendesk.NewTicket{Subject: "not ours", Comment: zendesk.CommentInput{Body: "hi", Public: true},
		Requester: &zendesk.Requester{Name: "Bob", Email: "bob@example.com"}})
	for i := 0; i < 3; i++ {
		zd.AgentComment(ticket, "reply "+strconv.Itoa(i), true)
		zd.AgentComment(other, "elsewhere", true)
	}

	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"reconcile", "--since", "1h", "--dry-run"}, envFrom(env), &out, &errb); err != nil {
		t.Fatalf("dry run: %v\n%s\n%s", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "would be enqueued (dry run: nothing changed) 3") {
		t.Errorf("dry run should count the 3 agent replies on the managed ticket:\n%s", out.String())
	}
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: db.Addr, DB: db.DB})
	defer insp.Close()
	if q, err := insp.GetQueueInfo(queues.Inbound); err == nil && q.Size > 0 {
		t.Fatalf("dry run enqueued %d tasks", q.Size)
	}
	out.Reset()
	if err := run(context.Background(), []string{"reconcile", "--since", "1h"}, envFrom(env), &out, &errb); err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "enqueued now       3") && !strings.Contains(out.String(), "enqueued now      3") {
		t.Errorf("the real run should enqueue the same 3:\n%s", out.String())
	}
	q, err := insp.GetQueueInfo(queues.Inbound)
	if err != nil || q.Size != 3 {
		t.Fatalf("inbound queue after the run: %+v, %v; want 3 tasks", q, err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"reconcile", "--since", "1h"}, envFrom(env), &out, &errb); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if !strings.Contains(out.String(), "already delivered 3") {
		t.Errorf("a second run should find the 3 already delivered:\n%s", out.String())
	}
	assertNoSecrets(t, env, out.String()+errb.String())
}

func TestWebhookStatusAndEnable(t *testing.T) {
	env, zd := opsEnv(t)
	id := zd.AddTarget("http://127.0.0.1:1/v1/zendesk/target", "zendesk", "target-password-SECRET6")
	env["DESKRELAY_ZENDESK_TARGET_ID"] = itoa(id)
	zd.SetTargetActive(id, false)

	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"webhook", "status"}, envFrom(env), &out, &errb)
	if exitStatus(err) != 1 || !strings.Contains(out.String(), "inactive") {
		t.Fatalf("status of an inactive target: exit %d (%v), out:\n%s\n%s", exitStatus(err), err, out.String(), errb.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"webhook", "enable"}, envFrom(env), &out, &errb); err != nil {
		t.Fatalf("enable: %v\n%s\n%s", err, out.String(), errb.String())
	}
	if tg, _ := zd.Target(id); !tg.Active {
		t.Fatalf("target still inactive after 'webhook enable':\n%s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"webhook", "status", "--json"}, envFrom(env), &out, &errb); err != nil {
		t.Fatalf("status after enable: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `"state": "active"`) {
		t.Fatalf("status JSON = %s", out.String())
	}
}

func TestReplayCommandDryRunOnNothing(t *testing.T) {
	env, _ := opsEnv(t)
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"replay", "--dry-run"}, envFrom(env), &out, &errb); err != nil {
		t.Fatalf("replay: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "0 failed message(s) selected") {
		t.Fatalf("replay output = %q", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"replay", "--queue", "inbound", "--dry-run"}, envFrom(env), &out, &errb); err != nil {
		t.Fatalf("replay inbound: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "0 failed deliver") {
		t.Fatalf("replay inbound output = %q", out.String())
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
