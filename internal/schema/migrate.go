package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
)

// Version is the key layout this release writes.
const Version = 1

// versionKey holds the layout version of the data in this Redis. It is the
// one key of deskrelay's own without an account: it describes them all.
const versionKey = keys.Prefix + "schema"

// Report says what Migrate did.
type Report struct {
	From, To int
	Renamed  int      // keys moved to the current layout
	Skipped  []string // old keys left alone because their new name was taken
}

// Migrate moves every key of layout 0 to layout 1 and records the version.
// Keys are moved with RENAMENX, which keeps their TTL and never overwrites a
// key this release already wrote; such a clash is reported, not resolved.
func Migrate(ctx context.Context, rdb redis.UniversalClient) (Report, error) {
	v, err := rdb.Get(ctx, versionKey).Int()
	switch {
	case errors.Is(err, redis.Nil):
		v = 0
	case err != nil:
		return Report{}, fmt.Errorf("read the key layout version (%s): %w", versionKey, err)
	}
	rep := Report{From: v, To: Version}
	if v > Version {
		return rep, fmt.Errorf("this Redis holds key layout %d, newer than this release's %d: run the newer release", v, Version)
	}
	if v == Version {
		return rep, nil
	}
	if err := forEachNode(ctx, rdb, func(ctx context.Context, node *redis.Client) error {
		return migrateNode(ctx, node, &rep)
	}); err != nil {
		return rep, err
	}
	if err := rdb.Set(ctx, versionKey, Version, 0).Err(); err != nil {
		return rep, fmt.Errorf("record key layout %d: %w", Version, err)
	}
	return rep, nil
}

// forEachNode runs fn on every master of a cluster, or on the one server.
func forEachNode(ctx context.Context, rdb redis.UniversalClient, fn func(context.Context, *redis.Client) error) error {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, c)
	default:
		return fmt.Errorf("migrate keys: unsupported Redis client %T", rdb)
	}
}

func migrateNode(ctx context.Context, node *redis.Client, rep *Report) error {
	iter := node.Scan(ctx, 0, keys.Prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		old := iter.Val()
		to, ok := NewName(old)
		if !ok {
			continue
		}
		done, err := node.RenameNX(ctx, old, to).Result()
		switch {
		case err != nil && strings.Contains(err.Error(), "no such key"):
			continue // another replica moved it meanwhile
		case err != nil:
			return fmt.Errorf("move %s to %s: %w", old, to, err)
		case done:
			rep.Renamed++
		default:
			rep.Skipped = append(rep.Skipped, old)
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan for keys of layout 0: %w", err)
	}
	return nil
}

// NewName is the layout-1 name of a layout-0 key, and false for a key that
// is not of layout 0 (already tagged, or the version key).
func NewName(old string) (string, bool) {
	rest, ok := strings.CutPrefix(old, keys.Prefix)
	if !ok || old == versionKey || strings.HasPrefix(rest, "{") {
		return "", false
	}
	if oauth, ok := strings.CutPrefix(rest, "oauth:"); ok {
		account, what, ok := strings.Cut(oauth, ":")
		if ok && account != "" {
			return keys.For(account).Prefix() + "oauth:" + what, true
		}
	}
	return keys.Default.Prefix() + rest, true
}
