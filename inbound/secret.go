package inbound

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/zendesk"
)

// SecretReader reads a webhook's signing secret from Zendesk
// (*zendesk.Client).
type SecretReader interface {
	WebhookSigningSecret(ctx context.Context, id string) (string, error)
}

// ReceiverState says whether the webhook receiver takes webhooks.
type ReceiverState string

// Receiver states.
const (
	// ReceiverOn: the signing secret is known; webhooks are verified.
	ReceiverOn ReceiverState = "on"
	// ReceiverWaiting: the secret is being read from Zendesk (retried in
	// the background); webhooks are answered 503 with Retry-After.
	ReceiverWaiting ReceiverState = "waiting_for_secret"
	// ReceiverOff: no secret and no webhook id to read it with; the route
	// answers 404.
	ReceiverOff ReceiverState = "off"
)

// ReceiverStatus is the webhook receiver's state for /v1/status and
// `deskrelay webhook status`.
type ReceiverStatus struct {
	State ReceiverState `json:"state"`
	// LastError is why the latest read of the signing secret failed.
	LastError string `json:"last_error,omitempty"`
	// Since is when the receiver entered State.
	Since time.Time `json:"since,omitzero"`
	// UpdatedAt is when this state was last confirmed (Redis copy).
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// ErrRefreshTooSoon is RefreshSecret's answer within a minute of the last read.
var ErrRefreshTooSoon = errors.New("the webhook's signing secret was read less than a minute ago")

// refreshEvery is how often RefreshSecret may ask Zendesk.
const refreshEvery = time.Minute

// secretState is the receiver's signing secret and what is known about it.
type secretState struct {
	mu          sync.Mutex
	secret      string
	status      ReceiverStatus
	lastRefresh time.Time // last RefreshSecret that asked Zendesk
	failures    int
	lastSummary time.Time
}

func (r *Receiver) initSecret() {
	st := ReceiverStatus{State: ReceiverOff, Since: r.cfg.Now().UTC()}
	switch {
	case r.cfg.WebhookSecret != "":
		st.State = ReceiverOn
	case r.cfg.WebhookID != "" && r.secrets != nil:
		st.State = ReceiverWaiting
	}
	r.sec.secret, r.sec.status = r.cfg.WebhookSecret, st
	r.setStateMetric(st.State)
}

// signingSecret returns the secret in use and the receiver's state.
func (r *Receiver) signingSecret() (string, ReceiverState) {
	r.sec.mu.Lock()
	defer r.sec.mu.Unlock()
	return r.sec.secret, r.sec.status.State
}

// ReceiverStatus reports whether the receiver takes webhooks, and why not.
func (r *Receiver) ReceiverStatus() ReceiverStatus {
	r.sec.mu.Lock()
	defer r.sec.mu.Unlock()
	return r.sec.status
}

// awaitSecret reads the signing secret from Zendesk until it has it or ctx
// ends, backing off from SecretRetry up to SecretRetryMax.
func (r *Receiver) awaitSecret(ctx context.Context) error {
	if _, state := r.signingSecret(); state != ReceiverWaiting {
		r.publishState(ctx)
		return nil
	}
	r.log.Info().Str("webhook_id", r.cfg.WebhookID).Msg("reading the webhook's signing secret from Zendesk; until then webhooks are answered 503")
	backoff := r.cfg.SecretRetry
	for ctx.Err() == nil {
		if err := r.readSecret(ctx); err == nil {
			return nil
		} else if ctx.Err() == nil {
			r.secretFailed(err, backoff)
		}
		r.publishState(ctx)
		sleep(ctx, backoff)
		backoff = min(backoff*2, r.cfg.SecretRetryMax)
	}
	return nil
}

// readSecret asks Zendesk once and, on success, turns the receiver on with
// the secret it answered.
func (r *Receiver) readSecret(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	s, err := r.secrets.WebhookSigningSecret(rctx, r.cfg.WebhookID)
	cancel()
	if err != nil {
		return r.explainSecretError(err)
	}
	r.sec.mu.Lock()
	changed := s != r.sec.secret
	was := r.sec.status.State
	r.sec.secret = s
	r.sec.status = ReceiverStatus{State: ReceiverOn, Since: r.cfg.Now().UTC()}
	failures := r.sec.failures
	r.sec.failures = 0
	r.sec.mu.Unlock()
	r.setStateMetric(ReceiverOn)
	if was != ReceiverOn {
		r.log.Info().Str("webhook_id", r.cfg.WebhookID).Int("failed_reads", failures).Msg("read the webhook's signing secret from Zendesk: the webhook receiver is on")
	} else if changed {
		r.log.Info().Str("webhook_id", r.cfg.WebhookID).Msg("the webhook's signing secret changed in Zendesk: using the new one")
	}
	r.publishState(ctx)
	return nil
}

// explainSecretError names what to fix when Zendesk's answer says so.
func (r *Receiver) explainSecretError(err error) error {
	switch zendesk.KindOf(err) {
	case zendesk.KindNotFound:
		return fmt.Errorf("webhook %s not found in Zendesk: check DESKRELAY_ZENDESK_WEBHOOK_ID: %w", r.cfg.WebhookID, err)
	case zendesk.KindUnauthorized:
		return fmt.Errorf("Zendesk refused to show webhook %s's signing secret: check the Zendesk credentials, or set DESKRELAY_WEBHOOK_SECRET: %w", r.cfg.WebhookID, err) //nolint:staticcheck // Zendesk is a name
	}
	return fmt.Errorf("read webhook %s's signing secret from Zendesk: %w", r.cfg.WebhookID, err)
}

// secretFailed records a failed read: logged when the run starts (an error
// when it names a setting to fix) and summarised once a minute.
func (r *Receiver) secretFailed(err error, retryIn time.Duration) {
	now := r.cfg.Now()
	r.sec.mu.Lock()
	defer r.sec.mu.Unlock()
	r.sec.failures++
	r.sec.status.LastError = err.Error()
	if r.sec.failures == 1 {
		r.sec.lastSummary = now
		r.log.Error().Err(err).Int64("retry_in_ms", retryIn.Milliseconds()).
			Msg("could not read the webhook's signing secret; retrying in the background, webhooks are answered 503 meanwhile")
		return
	}
	if now.Sub(r.sec.lastSummary) >= time.Minute {
		r.sec.lastSummary = now
		r.log.Warn().Err(err).Int("attempts", r.sec.failures).Int64("retry_in_ms", retryIn.Milliseconds()).
			Msg("still waiting for the webhook's signing secret")
	}
}

// RefreshSecret reads the webhook's signing secret from Zendesk again (the
// guardian calls it when Zendesk's record shows calls failing verification),
// at most once a minute: sooner it returns ErrRefreshTooSoon. Without a
// webhook id there is nothing to read and it returns nil.
func (r *Receiver) RefreshSecret(ctx context.Context) error {
	if r.cfg.WebhookID == "" || r.secrets == nil {
		return nil
	}
	r.sec.mu.Lock()
	if last := r.sec.lastRefresh; !last.IsZero() && r.cfg.Now().Sub(last) < refreshEvery {
		r.sec.mu.Unlock()
		return ErrRefreshTooSoon
	}
	r.sec.lastRefresh = r.cfg.Now()
	r.sec.mu.Unlock()
	if err := r.readSecret(ctx); err != nil {
		r.log.Error().Err(err).Msg("could not read the webhook's signing secret again")
		return err
	}
	return nil
}

func (r *Receiver) setStateMetric(state ReceiverState) {
	for _, s := range []ReceiverState{ReceiverOn, ReceiverWaiting, ReceiverOff} {
		v := 0.0
		if s == state {
			v = 1
		}
		r.m.receiverState.WithLabelValues(string(s)).Set(v)
	}
}

// publishState writes the receiver's state to Redis for `deskrelay webhook
// status` (another process); best effort.
func (r *Receiver) publishState(ctx context.Context) {
	st := r.ReceiverStatus()
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = r.rdb.HSet(wctx, r.space.WebhookReceiverState(), map[string]any{
		"state":      string(st.State),
		"last_error": st.LastError,
		"since":      st.Since.UnixMilli(),
		"updated_at": r.cfg.Now().UnixMilli(),
	}).Err()
}

// ReadReceiverState returns the receiver state serve last wrote to Redis;
// ok is false when none was written.
func ReadReceiverState(ctx context.Context, rdb redis.UniversalClient, sp keys.Space) (st ReceiverStatus, ok bool, err error) {
	v, err := rdb.HGetAll(ctx, sp.WebhookReceiverState()).Result()
	if err != nil {
		return ReceiverStatus{}, false, fmt.Errorf("read the webhook receiver's state: %w", err)
	}
	if v["state"] == "" {
		return ReceiverStatus{}, false, nil
	}
	st = ReceiverStatus{State: ReceiverState(v["state"]), LastError: v["last_error"]}
	var ms int64
	if _, err := fmt.Sscan(v["since"], &ms); err == nil && ms > 0 {
		st.Since = time.UnixMilli(ms).UTC()
	}
	if _, err := fmt.Sscan(v["updated_at"], &ms); err == nil && ms > 0 {
		st.UpdatedAt = time.UnixMilli(ms).UTC()
	}
	return st, true, nil
}
