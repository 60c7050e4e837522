package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/queues"
)

// Summary is an account's outbound state in a few numbers, for `deskrelay
// accounts` and /v1/status: read in one round trip, so that it stays cheap
// for thousands of accounts.
type Summary struct {
	// Gate is the outage gate: GateOpen or GateClosed.
	Gate string `json:"gate"`
	// Credentials is what the relay last saw of the account's credentials:
	// CredentialsOK or CredentialsUnauthorized.
	Credentials string `json:"credentials"`
	// Backlog counts the messages accepted and neither delivered nor
	// failed; Oldest is when the oldest of them was accepted (zero: none).
	Backlog int64     `json:"backlog"`
	Oldest  time.Time `json:"oldest,omitzero"`
	// Failed counts the failed messages kept for replay or discard.
	Failed int64 `json:"failed"`
}

// Summary reads the account's outbound state from Redis.
func (r *Relay) Summary(ctx context.Context) (Summary, error) {
	p := r.rdb.Pipeline()
	gate := p.HGet(ctx, r.space.OutboundGate(), "state")
	cred := p.HGet(ctx, r.space.OutboundCredentials(), "state")
	backlog := p.ZCard(ctx, r.space.OutboundQueued())
	oldest := p.ZRangeWithScores(ctx, r.space.OutboundQueued(), 0, 0)
	failed := p.ZCard(ctx, r.space.Failed(queues.Outbound))
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Summary{}, fmt.Errorf("outbound summary: %w", err)
	}
	s := Summary{Gate: GateOpen, Credentials: CredentialsOK, Backlog: backlog.Val(), Failed: failed.Val()}
	if gate.Val() == GateClosed {
		s.Gate = GateClosed
	}
	if cred.Val() == CredentialsUnauthorized {
		s.Credentials = CredentialsUnauthorized
	}
	if o := oldest.Val(); len(o) == 1 {
		s.Oldest = time.UnixMilli(int64(o[0].Score))
	}
	return s, nil
}
