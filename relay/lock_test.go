package relay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

func TestConversationLock(t *testing.T) {
	ctx := context.Background()
	db := redistest.New(t)
	fake := zendesktest.NewServer(t, zendesktest.Config{Logf: func(string, ...any) {}})
	zd, err := zendesk.New(zendesk.Config{BaseURL: fake.URL(), Email: fake.Email(), APIToken: fake.APIToken()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{LockTTL: time.Second}, Deps{Redis: db.Client, Asynq: db.AsynqOpt(), Zendesk: zd, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	t.Run("SecondHolderIsRefused", func(t *testing.T) {
		l, _, err := r.lock(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		defer l.release()
		if _, _, err := r.lock(ctx, "c1"); !errors.Is(err, errLockBusy) {
			t.Fatalf("second lock = %v, want errLockBusy", err)
		}
	})
	t.Run("ReleasedLockCanBeTaken", func(t *testing.T) {
		l, _, err := r.lock(ctx, "c2")
		if err != nil {
			t.Fatal(err)
		}
		l.release()
		l2, _, err := r.lock(ctx, "c2")
		if err != nil {
			t.Fatalf("lock after release: %v", err)
		}
		l2.release()
	})
	t.Run("RenewedWhileHeld", func(t *testing.T) {
		l, _, err := r.lock(ctx, "c3")
		if err != nil {
			t.Fatal(err)
		}
		defer l.release()
		deadline := time.Now().Add(2500 * time.Millisecond) // past the 1s TTL
		for time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			if held, err := l.l.Held(ctx); err != nil || !held {
				t.Fatalf("lock lost while held (held=%v, err=%v)", held, err)
			}
		}
	})
	t.Run("LostLockStopsTheWrite", func(t *testing.T) {
		l, lctx, err := r.lock(ctx, "c4")
		if err != nil {
			t.Fatal(err)
		}
		defer l.release()
		// Another worker took over (this one stalled past the TTL).
		if err := db.Client.Set(ctx, keys.Default.ConversationLock("c4"), "someone-else", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		rec := &record{ID: "m4", Conv: "c4"}
		_, err = write(lctx, r, rec, "create ticket", nil, func(context.Context) (*zendesk.TicketWrite, error) {
			t.Error("wrote without holding the conversation lock")
			return &zendesk.TicketWrite{}, nil
		})
		if err == nil {
			t.Fatal("write without the lock succeeded")
		}
		if n := fake.CountRequests("", "/api/v2/tickets"); n != 0 {
			t.Errorf("%d requests reached Zendesk", n)
		}
	})
}
