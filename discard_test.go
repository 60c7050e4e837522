package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// failMessages delivers two messages that Zendesk refuses (400: failed,
// invalid) and one it takes, with a relay of its own on db.
func failMessages(t *testing.T, db *redistest.DB, fake *zendesktest.Server) []string {
	t.Helper()
	zd, err := zendesk.New(zendesk.Config{BaseURL: fake.URL(), Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(relay.Config{}, relay.Deps{Redis: db.Client, Asynq: db.AsynqOpt(), Zendesk: zd, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	srv := queues.NewServer(db.AsynqOpt(), queues.ServerConfig{Concurrency: 2, ShutdownTimeout: 5 * time.Second, PollInterval: 100 * time.Millisecond}, zerolog.Nop())
	mux := asynq.NewServeMux()
	r.Register(mux)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	fake.FailNext(2, http.StatusBadRequest, zendesktest.Matching(http.MethodPost, "/api/v2/tickets"))
	ctx := context.Background()
	var failed []string
	for _, id := range []string{"bad-1", "bad-2", "good-1"} {
		m := relay.Message{ID: id, ConversationID: "conv-" + id, Author: relay.Author{Name: "Ann", Email: "ann@example.com"}, Body: "hello " + id}
		if _, _, err := r.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
		want := "delivered"
		if strings.HasPrefix(id, "bad") {
			want, failed = "failed", append(failed, id)
		}
		testutil.WaitFor(t, 20*time.Second, func() bool {
			st, err := r.Status(ctx, id)
			return err == nil && st.Status == want
		}, id+" "+want)
	}
	return failed
}

func TestDiscardCommand(t *testing.T) {
	db := redistest.New(t)
	fake := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	env := daemonEnv(t, db.URL(), fake.URL())
	failed := failMessages(t, db, fake)
	ctx := context.Background()
	discard := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		err := run(ctx, append([]string{"discard"}, args...), envFrom(env), &out, &errb)
		code := 0
		if err != nil {
			code = exitStatus(err)
		}
		return out.String(), errb.String(), code
	}
	left := func() int64 { return db.Client.ZCard(ctx, keys.Default.Failed(queues.Outbound)).Val() }

	t.Run("DryRunListsAndKeeps", func(t *testing.T) {
		out, errs, code := discard("--dry-run")
		if code != 0 || !strings.Contains(out, "would discard bad-1") || !strings.Contains(out, "would discard bad-2") || strings.Contains(out, "good-1") {
			t.Fatalf("exit %d, out:\n%s\n%s", code, out, errs)
		}
		if n := left(); n != 2 {
			t.Errorf("%d failed messages left after a dry run, want 2", n)
		}
	})
	t.Run("BeforeSelectsByFailureTime", func(t *testing.T) {
		out, errs, code := discard("--before", "1h")
		if code != 0 || !strings.Contains(out, "0 failed message(s) selected") {
			t.Fatalf("exit %d, out:\n%s\n%s", code, out, errs)
		}
	})
	t.Run("OtherReasonSelectsNothing", func(t *testing.T) {
		out, _, code := discard("--reason", "unauthorized")
		if code != 0 || !strings.Contains(out, "0 failed message(s) selected") {
			t.Fatalf("exit %d, out:\n%s", code, out)
		}
	})
	t.Run("BadFlagsExit2", func(t *testing.T) {
		for _, args := range [][]string{{"--queue", "sideways"}, {"--reason", "boredom"}, {"--before", "soon"}, {"extra"}} {
			if _, errs, code := discard(args...); code != 2 {
				t.Errorf("discard %q: exit %d, want 2 (%s)", args, code, errs)
			}
		}
	})
	t.Run("DropsRecordsFailedEntriesAndArchivedTasks", func(t *testing.T) {
		insp := asynq.NewInspector(db.AsynqOpt())
		defer insp.Close()
		if a, _ := insp.ListArchivedTasks(queues.Outbound); len(a) != 2 {
			t.Fatalf("%d archived tasks before the discard, want 2", len(a))
		}
		out, errs, code := discard("--reason", "invalid", "--before", "2100-01-01T00:00:00Z")
		if code != 0 || !strings.Contains(out, "discard bad-1") || !strings.Contains(out, "discarded 2") {
			t.Fatalf("exit %d, out:\n%s\n%s", code, out, errs)
		}
		for _, id := range failed {
			if n := db.Client.Exists(ctx, keys.Default.Message(id)).Val(); n != 0 {
				t.Errorf("record of %s still there", id)
			}
		}
		if n := left(); n != 0 {
			t.Errorf("%d failed messages left, want 0", n)
		}
		if a, _ := insp.ListArchivedTasks(queues.Outbound); len(a) != 0 {
			t.Errorf("%d archived tasks left, want 0", len(a))
		}
		if n := db.Client.Exists(ctx, keys.Default.Message("good-1")).Val(); n != 1 {
			t.Error("the delivered message's record went too")
		}
	})
	t.Run("InboundOnNothing", func(t *testing.T) {
		out, errs, code := discard("--queue", "inbound", "--dry-run")
		if code != 0 || !strings.Contains(out, "would discard 0 failed deliver") {
			t.Fatalf("exit %d, out:\n%s\n%s", code, out, errs)
		}
	})
	t.Run("RedisUnreachableExit1", func(t *testing.T) {
		env["DESKRELAY_REDIS_URL"] = "redis://127.0.0.1:1/0"
		if _, errs, code := discard(); code != 1 {
			t.Errorf("exit %d, want 1 (%s)", code, errs)
		}
	})
}
