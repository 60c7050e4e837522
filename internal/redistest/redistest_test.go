package redistest

import (
	"context"
	"testing"
)

func TestNewIsolatedAndEmpty(t *testing.T) {
	a := New(t)
	b := New(t)
	ctx := context.Background()
	if a.Addr == b.Addr && a.DB == b.DB {
		t.Fatalf("two claims got the same database %s/%d", a.Addr, a.DB)
	}
	if err := a.Client.Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Client.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("key leaked between databases: exists=%d err=%v", n, err)
	}
}

func TestServerRestartKeepsAppendOnlyData(t *testing.T) {
	s := StartServer(t, ServerOptions{AppendOnly: true})
	ctx := context.Background()
	c := s.Client(t)
	if err := c.Set(ctx, "durable", "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	got, err := s.Client(t).Get(ctx, "durable").Result()
	if err != nil || got != "yes" {
		t.Fatalf("after restart: got %q, %v; want yes", got, err)
	}
}
