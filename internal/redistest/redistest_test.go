package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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

// A developer's own data in the shared Redis survives the tests: a database
// that holds keys when the helper looks at it is never claimed, and so never
// flushed.
func TestNewLeavesForeignDataAlone(t *testing.T) {
	raw := os.Getenv(EnvURL)
	if raw == "" {
		raw = defaultURL
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !sharedAnswers(opt.Addr) {
		t.Skipf("no shared Redis at %s: nothing of a developer's to lose", opt.Addr)
	}
	const n = 14
	ctx := context.Background()
	own := redis.NewClient(&redis.Options{Addr: opt.Addr, DB: n})
	defer own.Close()
	key := "redistest-foreign-" + randomToken()
	if err := own.Set(ctx, key, "mine", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	defer own.Del(context.Background(), key)

	t.Run("ClaimOnlyDatabase14", func(t *testing.T) {
		db := newDB(t, opt.Addr, n, n)
		if err := db.Client.Set(ctx, "created-by-test", "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})
	got, err := own.Get(ctx, key).Result()
	if err != nil || got != "mine" {
		t.Fatalf("developer's key %s in database %d after the test: %q, %v; want it kept", key, n, got, err)
	}
	if n, err := own.Exists(ctx, "created-by-test").Result(); err != nil || n != 0 {
		t.Fatalf("the test's own key left in database 14: exists=%d err=%v", n, err)
	}
}

// The claim locks live in database 0, next to whatever else is there: the
// helper deletes only its own lock keys.
func TestNewLeavesDatabase0Alone(t *testing.T) {
	raw := os.Getenv(EnvURL)
	if raw == "" {
		raw = defaultURL
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !sharedAnswers(opt.Addr) {
		t.Skipf("no shared Redis at %s", opt.Addr)
	}
	ctx := context.Background()
	zero := redis.NewClient(&redis.Options{Addr: opt.Addr, DB: 0})
	defer zero.Close()
	key := "redistest-foreign-" + randomToken()
	if err := zero.Set(ctx, key, "mine", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	defer zero.Del(context.Background(), key)
	t.Run("Claim", func(t *testing.T) { New(t) })
	if got, err := zero.Get(ctx, key).Result(); err != nil || got != "mine" {
		t.Fatalf("key %s in database 0 after the test: %q, %v; want it kept", key, got, err)
	}
}

func randomToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// What a test created is gone when it ends, and its claim lock with it.
func TestNewRemovesWhatTheTestCreated(t *testing.T) {
	var db *DB
	t.Run("Claim", func(t *testing.T) {
		db = New(t)
		if err := db.Client.Set(context.Background(), "created-by-test", "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})
	if db.Embedded || db.DB == 0 {
		t.Skip("private server or miniredis: gone with the test")
	}
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: db.Addr, DB: db.DB})
	defer c.Close()
	if n, err := c.Exists(ctx, "created-by-test").Result(); err != nil || n != 0 {
		t.Fatalf("database %d after the test: created-by-test exists=%d err=%v; want it removed", db.DB, n, err)
	}
}
