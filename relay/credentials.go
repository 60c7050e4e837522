package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/queues"
)

// Credentials watch. A 401/403 fails the message (reason unauthorized) and
// marks the credentials unauthorized; one probe task (TypeCredentialProbe,
// unique across replicas) then asks Zendesk every CredentialProbeInterval
// whether they work again. When they do, the state is ok again and, with
// AutoReplay, the messages failed as unauthorized are
// replayed in conversation order.

// TypeCredentialProbe is the asynq task type of the credentials probe.
const TypeCredentialProbe = "outbound:credential-probe"

const credentialProbeTaskID = "outbound-credential-probe"

// Credential states.
const (
	CredentialsOK           = "ok"
	CredentialsUnauthorized = "unauthorized"
)

// CredentialsReport is the credentials' state for /v1/status.
type CredentialsReport struct {
	State string    `json:"state"`
	Since time.Time `json:"since,omitzero"`
}

func (r *Relay) credentialsState(ctx context.Context) (CredentialsReport, error) {
	h, since, err := r.watchState(ctx, r.space.OutboundCredentials())
	if err != nil {
		return CredentialsReport{}, fmt.Errorf("credentials state: %w", err)
	}
	c := CredentialsReport{State: CredentialsOK, Since: since}
	if h["state"] == CredentialsUnauthorized {
		c.State = CredentialsUnauthorized
	}
	return c, nil
}

// credentialsRejected notes a 401/403 and schedules the probe.
func (r *Relay) credentialsRejected(ctx context.Context) {
	set, err := r.rdb.HSetNX(ctx, r.space.OutboundCredentials(), "since", r.cfg.Now().UnixMilli()).Result()
	if err == nil {
		err = r.rdb.HSet(ctx, r.space.OutboundCredentials(), "state", CredentialsUnauthorized).Err()
	}
	if err != nil {
		r.log.Warn().Err(err).Msg("cannot record the credentials state")
		return
	}
	if set {
		r.log.Error().Msg("Zendesk rejects deskrelay's credentials (401/403): outbound messages fail as unauthorized until they are fixed")
	}
	r.scheduleProbe(ctx, TypeCredentialProbe, credentialProbeTaskID, r.cfg.CredentialProbeInterval)
}

// processCredentialProbe is the handler of TypeCredentialProbe.
func (r *Relay) processCredentialProbe(ctx context.Context, _ *asynq.Task) error {
	c, err := r.credentialsState(ctx)
	if err != nil {
		return queues.Wait(r.cfg.CredentialProbeInterval, err)
	}
	if c.State != CredentialsUnauthorized {
		return nil
	}
	if _, err := zdCall(ctx, r, "me", r.zdMe); err != nil {
		return queues.Wait(r.cfg.CredentialProbeInterval, fmt.Errorf("credentials probe: %w", err))
	}
	if err := r.rdb.Del(ctx, r.space.OutboundCredentials()).Err(); err != nil {
		return queues.Wait(r.cfg.CredentialProbeInterval, err)
	}
	r.log.Info().Dur("unauthorized_for_ms", r.cfg.Now().Sub(c.Since)).Msg("Zendesk accepts deskrelay's credentials again")
	if !r.cfg.AutoReplay {
		r.log.Info().Msg("messages failed as unauthorized wait for `deskrelay replay --reason unauthorized` (AutoReplay is off)")
		return nil
	}
	sum, err := r.Replay(ctx, ReplayOptions{Reason: ReasonUnauthorized})
	if err != nil {
		return fmt.Errorf("auto replay: %w", err)
	}
	r.log.Info().Int("replayed", sum.Replayed).Msg("auto replay of messages failed as unauthorized")
	return nil
}

func (r *Relay) zdMe(ctx context.Context) (struct{}, error) {
	_, err := r.zd.Me(ctx)
	return struct{}{}, err
}
