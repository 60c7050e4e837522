package schema_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/schema"
)

func TestNewName(t *testing.T) {
	tests := []struct {
		name, old, want string
		moved           bool
	}{
		{"MessageGoesToDefault", "deskrelay:msg:m1", "deskrelay:{default}:msg:m1", true},
		{"ConversationKey", "deskrelay:conv:c:1:ticket", "deskrelay:{default}:conv:c:1:ticket", true},
		{"OAuthKeepsItsAccount", "deskrelay:oauth:acme:token", "deskrelay:{acme}:oauth:token", true},
		{"OAuthLock", "deskrelay:oauth:default:lock", "deskrelay:{default}:oauth:lock", true},
		{"AlreadyTagged", "deskrelay:{acme}:msg:1", "", false},
		{"VersionKey", "deskrelay:schema", "", false},
		{"AccountsSet", keys.Accounts(), "", false},
		{"NotOurs", "asynq:{outbound}:pending", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, moved := schema.NewName(tt.old)
			if got != tt.want || moved != tt.moved {
				t.Fatalf("NewName(%q) = %q, %v; want %q, %v", tt.old, got, moved, tt.want, tt.moved)
			}
		})
	}
}

func TestMigrateMovesLayoutZeroKeepingTTLs(t *testing.T) {
	ctx := context.Background()
	db := redistest.New(t)
	rdb := db.Client
	// Layout 0 as release 780b922 wrote it.
	must(t, rdb.HSet(ctx, "deskrelay:msg:m1", "status", "queued").Err())
	must(t, rdb.Set(ctx, "deskrelay:conv:c1:ticket", "1001", time.Hour).Err())
	must(t, rdb.ZAdd(ctx, "deskrelay:failed:outbound", redis.Z{Score: 1, Member: "m0"}).Err())
	must(t, rdb.HSet(ctx, "deskrelay:oauth:default:token", "access", "tok").Err())
	must(t, rdb.Set(ctx, "deskrelay:reconcile:checkpoint", "1700000000", 0).Err())
	// A key this release already wrote wins over its old twin.
	must(t, rdb.Set(ctx, "deskrelay:ledger:zd:comment:9", "old", 0).Err())
	must(t, rdb.Set(ctx, keys.Default.EventLedger("zd:comment:9"), "new", 0).Err())

	rep, err := schema.Migrate(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if rep.From != 0 || rep.To != schema.Version || rep.Renamed != 5 || len(rep.Skipped) != 1 {
		t.Fatalf("report = %+v, want from 0, 5 renamed, 1 skipped", rep)
	}
	if got := rdb.HGet(ctx, keys.Default.Message("m1"), "status").Val(); got != "queued" {
		t.Errorf("message record after migration: status %q, want queued", got)
	}
	if ttl := rdb.TTL(ctx, keys.Default.ConversationTicket("c1")).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("conversation mapping TTL after migration = %s, want kept (<= 1h)", ttl)
	}
	if got := rdb.HGet(ctx, keys.Default.OAuthToken(), "access").Val(); got != "tok" {
		t.Errorf("OAuth token after migration = %q, want tok", got)
	}
	if got := rdb.Get(ctx, keys.Default.EventLedger("zd:comment:9")).Val(); got != "new" {
		t.Errorf("clashing key overwritten: %q", got)
	}
	if n := rdb.Exists(ctx, "deskrelay:msg:m1", "deskrelay:reconcile:checkpoint").Val(); n != 0 {
		t.Errorf("%d layout-0 keys left behind", n)
	}

	again, err := schema.Migrate(ctx, rdb)
	if err != nil || again.Renamed != 0 || again.From != schema.Version {
		t.Fatalf("second run = %+v, %v; want a no-op", again, err)
	}
}

// TestMigrateIndexesQueuedMessages: data of layout 1 (the previous round's
// release) has no backlog index; Migrate adds every queued message of every
// account to its account's, and leaves delivered and failed ones out.
func TestMigrateIndexesQueuedMessages(t *testing.T) {
	ctx := context.Background()
	db := redistest.New(t)
	rdb := db.Client
	must(t, rdb.Set(ctx, "deskrelay:schema", 1, 0).Err())
	acme := keys.For("acme")
	must(t, rdb.HSet(ctx, keys.Default.Message("m1"), "state", "queued", "accepted_at", "1700000000000").Err())
	must(t, rdb.HSet(ctx, keys.Default.Message("m2"), "state", "delivered", "accepted_at", "1700000001000").Err())
	must(t, rdb.HSet(ctx, acme.Message("m1"), "state", "queued", "accepted_at", "1700000002000").Err())
	must(t, rdb.HSet(ctx, acme.Message("m3"), "state", "failed", "accepted_at", "1700000003000").Err())

	rep, err := schema.Migrate(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if rep.From != 1 || rep.Indexed != 2 || rep.Renamed != 0 {
		t.Fatalf("report = %+v, want from 1, 2 indexed, nothing moved", rep)
	}
	for sp, want := range map[keys.Space]float64{keys.Default: 1700000000000, acme: 1700000002000} {
		got, err := rdb.ZRangeWithScores(ctx, sp.OutboundQueued(), 0, -1).Result()
		if err != nil || len(got) != 1 || got[0].Member != "m1" || got[0].Score != want {
			t.Errorf("%s's backlog index = %v, %v; want m1 at %v", sp.Account(), got, err, want)
		}
	}
	if v := rdb.Get(ctx, "deskrelay:schema").Val(); v != strconv.Itoa(schema.Version) {
		t.Fatalf("layout recorded = %q, want %d", v, schema.Version)
	}
}

func TestMigrateRefusesANewerLayout(t *testing.T) {
	ctx := context.Background()
	db := redistest.New(t)
	must(t, db.Client.Set(ctx, "deskrelay:schema", schema.Version+1, 0).Err())
	if _, err := schema.Migrate(ctx, db.Client); err == nil {
		t.Fatal("Migrate accepted a layout newer than its own")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
