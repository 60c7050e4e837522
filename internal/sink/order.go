package sink

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
)

// A conversation's delivery order is a sorted set of the event ids not yet
// delivered (keys.InboundOrder), scored by occurred_at; the event at its
// head goes out first. Every write of it is here.

// orderScore is an event's place in its conversation's delivery order
// (occurred_at, unix ms).
func orderScore(ev events.Event) float64 { return float64(ev.OccurredAt.UnixMilli()) }

// orderJoin adds ev to its conversation's order unless it is there already.
func orderJoin(ctx context.Context, c redis.Cmdable, ev events.Event) *redis.IntCmd {
	return c.ZAddNX(ctx, keys.Default.InboundOrder(ev.ConversationID), redis.Z{Score: orderScore(ev), Member: ev.ID})
}

// orderPut adds ev to its conversation's order, or moves it to its score.
func orderPut(ctx context.Context, c redis.Cmdable, ev events.Event) *redis.IntCmd {
	return c.ZAdd(ctx, keys.Default.InboundOrder(ev.ConversationID), redis.Z{Score: orderScore(ev), Member: ev.ID})
}

// orderLeave takes event id out of conversation conv's order.
func orderLeave(ctx context.Context, c redis.Cmdable, conv, id string) *redis.IntCmd {
	return c.ZRem(ctx, keys.Default.InboundOrder(conv), id)
}

// orderHead returns the first event id of conv's order ("" when empty).
func orderHead(ctx context.Context, c redis.Cmdable, conv string) (string, error) {
	head, err := c.ZRange(ctx, keys.Default.InboundOrder(conv), 0, 0).Result()
	if err != nil || len(head) == 0 {
		return "", err
	}
	return head[0], nil
}
