package inbound

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
)

// LastWebhookAt returns when a verified webhook (or target call) last
// arrived, as recorded in Redis by any replica; ok is false when none was
// recorded. The guardian uses it to size the gap to backfill. Recorded at
// most once a second per process.
func LastWebhookAt(ctx context.Context, rdb redis.UniversalClient) (at time.Time, ok bool, err error) {
	v, err := rdb.Get(ctx, keys.Default.WebhookLastReceived()).Int64()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read last webhook time: %w", err)
	}
	return time.UnixMilli(v).UTC(), true, nil
}

// SignatureFailures is the current run of webhook signature failures: the
// requests whose signature did not verify since the last one that did.
type SignatureFailures struct {
	Run     int64     // 0 when the last signature was good
	FirstAt time.Time // first failure of the run
	LastAt  time.Time // latest failure
}

// ReadSignatureFailures returns the current run of signature failures
// (a wrong webhook signing secret shows as a growing run). The guardian
// does not re-enable a webhook while Run > 0.
func ReadSignatureFailures(ctx context.Context, rdb redis.UniversalClient) (SignatureFailures, error) {
	v, err := rdb.HGetAll(ctx, keys.Default.WebhookSignatureFailures()).Result()
	if err != nil {
		return SignatureFailures{}, fmt.Errorf("read signature failures: %w", err)
	}
	var s SignatureFailures
	s.Run, _ = strconv.ParseInt(v["run"], 10, 64)
	if ms, err := strconv.ParseInt(v["first_at"], 10, 64); err == nil {
		s.FirstAt = time.UnixMilli(ms).UTC()
	}
	if ms, err := strconv.ParseInt(v["last_at"], 10, 64); err == nil {
		s.LastAt = time.UnixMilli(ms).UTC()
	}
	return s, nil
}
