package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
)

// Version is the key layout this release writes: 1 tags every key with its
// account (deskrelay:{account}:…); 2 adds each account's backlog index
// (keys.Space.OutboundQueued), which Migrate fills from the messages already
// queued.
const Version = 2

// versionKey holds the layout version of the data in this Redis. It is the
// one key of deskrelay's own without an account: it describes them all.
const versionKey = keys.Prefix + "schema"

// Report says what Migrate did.
type Report struct {
	From, To int
	Renamed  int      // keys moved to the current layout
	Indexed  int      // queued messages added to their account's backlog index
	Skipped  []string // old keys left alone because their new name was taken
}

// Migrate moves every key of layout 0 to layout 1 and records the version.
// Keys are moved with RENAMENX, which keeps their TTL and never overwrites a
// key this release already wrote; such a clash is reported, not resolved.
// On a Redis Cluster it looks on every master, and moves a key with DUMP and
// RESTORE (its new name hashes to another slot), just as carefully.
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
	if v < 1 {
		m := &mover{rdb: rdb, rep: &rep}
		if err := forEachNode(ctx, rdb, m.node); err != nil {
			return rep, err
		}
	}
	if v < 2 {
		ix := &indexer{rdb: rdb, rep: &rep}
		if err := forEachNode(ctx, rdb, ix.node); err != nil {
			return rep, err
		}
	}
	if err := rdb.Set(ctx, versionKey, Version, 0).Err(); err != nil {
		return rep, fmt.Errorf("record key layout %d: %w", Version, err)
	}
	return rep, nil
}

// forEachNode runs fn on every master of a cluster (at once: go-redis
// calls fn from a goroutine per master), or on the one server.
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

// mover moves the layout-0 keys of each node it is given.
type mover struct {
	rdb redis.UniversalClient
	mu  sync.Mutex // rep: nodes are moved at once
	rep *Report
}

// node moves the layout-0 keys that node holds.
func (m *mover) node(ctx context.Context, node *redis.Client) error {
	_, cluster := m.rdb.(*redis.ClusterClient)
	iter := node.Scan(ctx, 0, keys.Prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		old := iter.Val()
		to, ok := NewName(old)
		if !ok {
			continue
		}
		var done, gone bool
		var err error
		if cluster {
			done, gone, err = moveAcrossSlots(ctx, m.rdb, old, to)
		} else {
			done, gone, err = renameNX(ctx, node, old, to)
		}
		if err != nil {
			return fmt.Errorf("move %s to %s: %w", old, to, err)
		}
		if !gone {
			m.count(old, done)
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan for keys of layout 0: %w", err)
	}
	return nil
}

func (m *mover) count(old string, done bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if done {
		m.rep.Renamed++
	} else {
		m.rep.Skipped = append(m.rep.Skipped, old)
	}
}

// renameNX moves old to to on one server. gone: another replica moved it
// meanwhile; done false: to exists.
func renameNX(ctx context.Context, node *redis.Client, old, to string) (done, gone bool, err error) {
	done, err = node.RenameNX(ctx, old, to).Result()
	if err != nil && strings.Contains(err.Error(), "no such key") {
		return false, true, nil
	}
	return done, false, err
}

// moveAcrossSlots moves old to to on a cluster, where the two names hash to
// different slots (the new one carries the account's tag) and RENAMENX
// cannot: DUMP, then RESTORE with the remaining TTL (refused, not
// overwriting, when to exists), then DEL. It is not one step: a crash between
// RESTORE and DEL leaves old beside to, which the next start reports as
// skipped. The previous release never ran on a cluster; such keys come only
// from a server's data imported into one.
func moveAcrossSlots(ctx context.Context, rdb redis.UniversalClient, old, to string) (done, gone bool, err error) {
	dump, err := rdb.Dump(ctx, old).Result()
	if errors.Is(err, redis.Nil) {
		return false, true, nil
	}
	if err != nil {
		return false, false, err
	}
	ttl, err := rdb.PTTL(ctx, old).Result()
	switch {
	case err != nil:
		return false, false, err
	case ttl == -2*time.Nanosecond || ttl == -2*time.Millisecond: // gone meanwhile
		return false, true, nil
	case ttl < 0: // no TTL
		ttl = 0
	}
	if err := rdb.Restore(ctx, to, ttl, dump).Err(); err != nil {
		if redis.HasErrorPrefix(err, "BUSYKEY") {
			return false, false, nil
		}
		return false, false, err
	}
	return true, false, rdb.Del(ctx, old).Err()
}

// NewName is the layout-1 name of a layout-0 key, and false for a key that
// is not of layout 0 (already tagged, or the version key).
func NewName(old string) (string, bool) {
	rest, ok := strings.CutPrefix(old, keys.Prefix)
	if !ok || old == versionKey || old == keys.Accounts() || strings.HasPrefix(rest, "{") {
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

// queuedState is a message record's state while it waits for delivery
// (relay's StateQueued).
const queuedState = "queued"

// indexer adds the messages queued before layout 2 to their account's
// backlog index (ZADD NX: a message the relay indexed meanwhile keeps its
// entry).
type indexer struct {
	rdb redis.UniversalClient
	mu  sync.Mutex
	rep *Report
}

// node indexes the queued messages that node holds.
func (ix *indexer) node(ctx context.Context, node *redis.Client) error {
	iter := node.Scan(ctx, 0, keys.Prefix+"{*}:msg:*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		account, id, ok := messageKey(k)
		if !ok {
			continue
		}
		v, err := node.HMGet(ctx, k, "state", "accepted_at").Result()
		if err != nil {
			if strings.Contains(err.Error(), "WRONGTYPE") {
				continue
			}
			return fmt.Errorf("read %s: %w", k, err)
		}
		state, _ := v[0].(string)
		at, _ := v[1].(string)
		if state != queuedState {
			continue
		}
		var ms float64
		_, _ = fmt.Sscan(at, &ms)
		if err := ix.rdb.ZAddNX(ctx, keys.For(account).OutboundQueued(), redis.Z{Score: ms, Member: id}).Err(); err != nil {
			return fmt.Errorf("index %s: %w", k, err)
		}
		ix.mu.Lock()
		ix.rep.Indexed++
		ix.mu.Unlock()
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan for queued messages: %w", err)
	}
	return nil
}

// messageKey splits a message record's key deskrelay:{account}:msg:<id>.
func messageKey(k string) (account, id string, ok bool) {
	rest, ok := strings.CutPrefix(k, keys.Prefix+"{")
	if !ok {
		return "", "", false
	}
	account, rest, ok = strings.Cut(rest, "}:msg:")
	if !ok || account == "" || rest == "" || strings.ContainsAny(account, "{}") {
		return "", "", false
	}
	if k != keys.For(account).Message(rest) {
		return "", "", false
	}
	return account, rest, true
}
