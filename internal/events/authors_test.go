package events_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/zendesk"
)

func TestAuthorCache(t *testing.T) {
	ctx := context.Background()
	users := map[int64]zendesk.User{
		1: {Name: "Ann Admin", Role: "admin"},
		2: {Name: "Al Agent", Role: "agent"},
		3: {Name: "Eve End", Role: "end-user"},
	}
	var calls atomic.Int64
	get := func(_ context.Context, id int64) (*zendesk.User, error) {
		calls.Add(1)
		u, ok := users[id]
		if !ok {
			return nil, &zendesk.Error{Status: 404, Kind: zendesk.KindNotFound}
		}
		return &u, nil
	}
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }

	t.Run("AgentsAndAdminsAreStaff", func(t *testing.T) {
		c := events.NewAuthorCache(time.Minute, 10, clock)
		tests := []struct {
			name string
			id   int64
			want events.Author
		}{
			{"admin", 1, events.Author{ID: 1, Name: "Ann Admin", Role: events.RoleAgent}},
			{"agent", 2, events.Author{ID: 2, Name: "Al Agent", Role: events.RoleAgent}},
			{"end user", 3, events.Author{ID: 3, Name: "Eve End", Role: events.RoleEndUser}},
			{"deleted user", 4, events.Author{ID: 4, Role: events.RoleEndUser}},
		}
		for _, tt := range tests {
			got, err := c.Author(ctx, tt.id, get)
			if err != nil || got != tt.want {
				t.Errorf("%s: Author(%d) = %+v, %v; want %+v", tt.name, tt.id, got, err, tt.want)
			}
		}
	})

	t.Run("OneLookupPerUserUntilTheTTL", func(t *testing.T) {
		calls.Store(0)
		c := events.NewAuthorCache(time.Minute, 10, clock)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, err := c.Author(ctx, 2, get); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := calls.Load(); n != 1 {
			t.Fatalf("%d lookups for one user, want 1", n)
		}
		now = now.Add(2 * time.Minute)
		if _, err := c.Author(ctx, 2, get); err != nil {
			t.Fatal(err)
		}
		if n := calls.Load(); n != 2 {
			t.Fatalf("%d lookups after the TTL, want 2", n)
		}
	})

	t.Run("ErrorsAreNotRemembered", func(t *testing.T) {
		c := events.NewAuthorCache(0, 10, clock)
		boom := errors.New("zendesk down")
		if _, err := c.Author(ctx, 1, func(context.Context, int64) (*zendesk.User, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want %v", err, boom)
		}
		got, err := c.Author(ctx, 1, get)
		if err != nil || got.Role != events.RoleAgent {
			t.Fatalf("after the error: %+v, %v; want the admin as an agent", got, err)
		}
	})
}
