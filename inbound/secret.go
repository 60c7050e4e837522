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

// initSecret sets the account's first state: on with a configured secret,
// waiting when it can read one from Zendesk, off otherwise. A secret prev
// (the account it replaces) read from Zendesk for the same webhook is kept.
func (a *account) initSecret(prev *account) {
	st := ReceiverStatus{State: ReceiverOff, Since: a.r.cfg.Now().UTC()}
	secret := a.spec.WebhookSecret
	switch {
	case secret != "":
		st.State = ReceiverOn
	case a.spec.WebhookID != "" && a.secrets != nil:
		st.State = ReceiverWaiting
		if prev != nil && prev.spec.WebhookSecret == "" && prev.spec.WebhookID == a.spec.WebhookID {
			if s, state := prev.signingSecret(); state == ReceiverOn {
				secret, st = s, prev.status()
			}
		}
	}
	a.sec.secret, a.sec.status = secret, st
}

// signingSecret returns the secret in use and the receiver's state.
func (a *account) signingSecret() (string, ReceiverState) {
	a.sec.mu.Lock()
	defer a.sec.mu.Unlock()
	return a.sec.secret, a.sec.status.State
}

// status reports whether the account's receiver takes webhooks, and why not.
func (a *account) status() ReceiverStatus {
	a.sec.mu.Lock()
	defer a.sec.mu.Unlock()
	return a.sec.status
}

// awaitSecret reads the signing secret from Zendesk until it has it or ctx
// ends, backing off from SecretRetry up to SecretRetryMax.
func (a *account) awaitSecret(ctx context.Context) {
	if _, state := a.signingSecret(); state != ReceiverWaiting {
		a.publishState(ctx)
		return
	}
	a.log.Info().Str("webhook_id", a.spec.WebhookID).Msg("reading the webhook's signing secret from Zendesk; until then webhooks are answered 503")
	backoff := a.r.cfg.SecretRetry
	for ctx.Err() == nil {
		if err := a.readSecret(ctx); err == nil {
			return
		} else if ctx.Err() == nil {
			a.secretFailed(err, backoff)
		}
		a.publishState(ctx)
		sleep(ctx, backoff)
		backoff = min(backoff*2, a.r.cfg.SecretRetryMax)
	}
}

// readSecret asks Zendesk once and, on success, turns the receiver on with
// the secret it answered.
func (a *account) readSecret(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	s, err := a.secrets.WebhookSigningSecret(rctx, a.spec.WebhookID)
	cancel()
	if err != nil {
		return a.explainSecretError(err)
	}
	a.sec.mu.Lock()
	changed := s != a.sec.secret
	was := a.sec.status.State
	a.sec.secret = s
	a.sec.status = ReceiverStatus{State: ReceiverOn, Since: a.r.cfg.Now().UTC()}
	failures := a.sec.failures
	a.sec.failures = 0
	a.sec.mu.Unlock()
	a.setStateMetric(ReceiverOn)
	if was != ReceiverOn {
		a.log.Info().Str("webhook_id", a.spec.WebhookID).Int("failed_reads", failures).Msg("read the webhook's signing secret from Zendesk: the webhook receiver is on")
	} else if changed {
		a.log.Info().Str("webhook_id", a.spec.WebhookID).Msg("the webhook's signing secret changed in Zendesk: using the new one")
	}
	a.publishState(ctx)
	return nil
}

// explainSecretError names what to fix when Zendesk's answer says so.
func (a *account) explainSecretError(err error) error {
	switch zendesk.KindOf(err) {
	case zendesk.KindNotFound:
		return fmt.Errorf("webhook %s not found in Zendesk: check DESKRELAY_ZENDESK_WEBHOOK_ID: %w", a.spec.WebhookID, err)
	case zendesk.KindUnauthorized:
		return fmt.Errorf("Zendesk refused to show webhook %s's signing secret: check the Zendesk credentials, or set DESKRELAY_WEBHOOK_SECRET: %w", a.spec.WebhookID, err) //nolint:staticcheck // Zendesk is a name
	}
	return fmt.Errorf("read webhook %s's signing secret from Zendesk: %w", a.spec.WebhookID, err)
}

// secretFailed records a failed read: logged when the run starts (an error
// when it names a setting to fix) and summarised once a minute.
func (a *account) secretFailed(err error, retryIn time.Duration) {
	now := a.r.cfg.Now()
	a.sec.mu.Lock()
	defer a.sec.mu.Unlock()
	a.sec.failures++
	a.sec.status.LastError = err.Error()
	if a.sec.failures == 1 {
		a.sec.lastSummary = now
		a.log.Error().Err(err).Int64("retry_in_ms", retryIn.Milliseconds()).
			Msg("could not read the webhook's signing secret; retrying in the background, webhooks are answered 503 meanwhile")
		return
	}
	if now.Sub(a.sec.lastSummary) >= time.Minute {
		a.sec.lastSummary = now
		a.log.Warn().Err(err).Int("attempts", a.sec.failures).Int64("retry_in_ms", retryIn.Milliseconds()).
			Msg("still waiting for the webhook's signing secret")
	}
}

// refreshSecret reads the webhook's signing secret from Zendesk again
// (Receiver.RefreshSecret), at most once a minute: sooner it returns
// ErrRefreshTooSoon. Without a webhook id there is nothing to read and it
// returns nil.
func (a *account) refreshSecret(ctx context.Context) error {
	if a.spec.WebhookID == "" || a.secrets == nil {
		return nil
	}
	a.sec.mu.Lock()
	if last := a.sec.lastRefresh; !last.IsZero() && a.r.cfg.Now().Sub(last) < refreshEvery {
		a.sec.mu.Unlock()
		return ErrRefreshTooSoon
	}
	a.sec.lastRefresh = a.r.cfg.Now()
	a.sec.mu.Unlock()
	if err := a.readSecret(ctx); err != nil {
		a.log.Error().Err(err).Msg("could not read the webhook's signing secret again")
		return err
	}
	return nil
}

func (a *account) setStateMetric(state ReceiverState) {
	for _, s := range []ReceiverState{ReceiverOn, ReceiverWaiting, ReceiverOff} {
		v := 0.0
		if s == state {
			v = 1
		}
		a.r.m.receiverState.WithLabelValues(a.name(), string(s)).Set(v)
	}
}

// publishState writes the receiver's state to Redis for `deskrelay webhook
// status` (another process); best effort.
func (a *account) publishState(ctx context.Context) {
	st := a.status()
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = a.r.rdb.HSet(wctx, a.space.WebhookReceiverState(), map[string]any{
		"state":      string(st.State),
		"last_error": st.LastError,
		"since":      st.Since.UnixMilli(),
		"updated_at": a.r.cfg.Now().UnixMilli(),
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
