package sink

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
)

// A conversation's delivery order (in its account's key space sp) is a sorted set of the event ids not yet
// delivered (keys.InboundOrder), scored by occurred_at; the event at its
// head goes out first. Every write of it is here.

// orderScore is an event's place in its conversation's delivery order
// (occurred_at, unix ms).
func orderScore(ev events.Event) float64 { return float64(ev.OccurredAt.UnixMilli()) }

// orderJoin adds ev to its conversation's order unless it is there already;
// the order lives for ttl (the ledger's retention) after its last activity.
func orderJoin(ctx context.Context, c redis.Cmdable, sp keys.Space, ev events.Event, ttl time.Duration) *redis.IntCmd {
	k := sp.InboundOrder(ev.ConversationID)
	cmd := c.ZAddNX(ctx, k, redis.Z{Score: orderScore(ev), Member: ev.ID})
	c.Expire(ctx, k, ttl)
	return cmd
}

// orderPut adds ev to its conversation's order, or moves it to its score.
func orderPut(ctx context.Context, c redis.Cmdable, sp keys.Space, ev events.Event, ttl time.Duration) *redis.IntCmd {
	k := sp.InboundOrder(ev.ConversationID)
	cmd := c.ZAdd(ctx, k, redis.Z{Score: orderScore(ev), Member: ev.ID})
	c.Expire(ctx, k, ttl)
	return cmd
}

// orderLeave takes event id out of conversation conv's order.
func orderLeave(ctx context.Context, c redis.Cmdable, sp keys.Space, conv, id string) *redis.IntCmd {
	return c.ZRem(ctx, sp.InboundOrder(conv), id)
}

// orderHead returns the first event id of conv's order ("" when empty).
func orderHead(ctx context.Context, c redis.Cmdable, sp keys.Space, conv string) (string, error) {
	head, err := c.ZRange(ctx, sp.InboundOrder(conv), 0, 0).Result()
	if err != nil || len(head) == 0 {
		return "", err
	}
	return head[0], nil
}
