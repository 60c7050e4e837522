package inbound

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/sink"
)

// LastWebhookAt returns when a verified webhook (or target call) of
// account sp last arrived, as recorded in Redis by any replica; ok is false
// when none was recorded. The guardian uses it to size the gap to backfill.
// Recorded at most once a second per process.
func LastWebhookAt(ctx context.Context, rdb redis.UniversalClient, sp keys.Space) (at time.Time, ok bool, err error) {
	v, err := rdb.Get(ctx, sp.WebhookLastReceived()).Int64()
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

// ReadSignatureFailures returns account sp's current run of signature
// failures (a wrong webhook signing secret shows as a growing run). The
// guardian does not re-enable a webhook while Run > 0.
func ReadSignatureFailures(ctx context.Context, rdb redis.UniversalClient, sp keys.Space) (SignatureFailures, error) {
	v, err := rdb.HGetAll(ctx, sp.WebhookSignatureFailures()).Result()
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

// AccountStatus is one account's inbound state for /v1/status: its webhook
// receiver (this process's view), what every replica recorded in Redis,
// and its failed sink deliveries. The spool is the process's (SpoolStatus).
type AccountStatus struct {
	Account  string         `json:"account"`
	Receiver ReceiverStatus `json:"receiver"`
	// ReceiverOn is true when the receiver verifies webhooks.
	ReceiverOn        bool      `json:"receiver_on"`
	LastWebhookAt     time.Time `json:"last_webhook_at,omitzero"`
	SignatureFailures int64     `json:"signature_failures_run"`
	Failed            int       `json:"failed_deliveries"`
}

// AccountStatus reports the account's inbound state; an account not
// configured is ErrUnknownAccount. It reads Redis: an error says what
// could not be read, with the rest of the report filled in.
func (r *Receiver) AccountStatus(ctx context.Context, account string) (AccountStatus, error) {
	a, err := r.find(account)
	if err != nil {
		return AccountStatus{}, err
	}
	st := AccountStatus{Account: a.name(), Receiver: a.status()}
	st.ReceiverOn = st.Receiver.State == ReceiverOn
	var errs []error
	if at, ok, err := LastWebhookAt(ctx, r.rdb, a.space); err != nil {
		errs = append(errs, err)
	} else if ok {
		st.LastWebhookAt = at
	}
	if sf, err := ReadSignatureFailures(ctx, r.rdb, a.space); err != nil {
		errs = append(errs, err)
	} else {
		st.SignatureFailures = sf.Run
	}
	if failed, err := sink.Failed(ctx, r.rdb, a.space, time.Time{}); err != nil {
		errs = append(errs, err)
	} else {
		st.Failed = len(failed)
	}
	return st, errors.Join(errs...)
}
