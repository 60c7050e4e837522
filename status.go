package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/httpx"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/sink"
)

// statusReport is GET /v1/status: what an operator wants to see first.
type statusReport struct {
	Time        time.Time       `json:"time"`
	Version     string          `json:"version"`
	Redis       string          `json:"redis"` // "ok" or the problem
	RedisSetup  redisSetup      `json:"redis_setup"`
	Outbound    any             `json:"outbound,omitempty"`
	Inbound     *inboundStatus  `json:"inbound,omitempty"`
	Reconcile   any             `json:"reconcile,omitempty"`
	Credentials credentialState `json:"credentials"`
	Errors      []string        `json:"errors,omitempty"`
}

type inboundStatus struct {
	// ReceiverOn is true when the webhook receiver verifies webhooks
	// (receiver.state "on").
	ReceiverOn bool                    `json:"receiver_on"`
	Receiver   *inbound.ReceiverStatus `json:"receiver,omitempty"`
	// SpoolPending is spool.pending, kept for existing scripts.
	SpoolPending      int64                `json:"spool_pending"`
	Spool             *inbound.SpoolStatus `json:"spool,omitempty"`
	LastWebhookAt     time.Time            `json:"last_webhook_at,omitzero"`
	SignatureFailures int64                `json:"signature_failures_run"`
	Failed            int                  `json:"failed_deliveries"`
}

type credentialState struct {
	Mode string `json:"mode"` // oauth-refresh, oauth-token, api-token
	// APITokenRetiresAt is set while API-token auth is in use.
	APITokenRetiresAt *time.Time `json:"api_token_retires_at,omitempty"`
	Warning           string     `json:"warning,omitempty"`
	OAuth             any        `json:"oauth,omitempty"`
}

func (d *daemon) handleStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	httpx.WriteJSON(w, http.StatusOK, d.status(ctx))
}

func (d *daemon) status(ctx context.Context) statusReport {
	v, _, _ := buildVersion()
	rep := statusReport{Time: time.Now().UTC(), Version: v, Redis: "ok"}
	fail := func(what string, err error) { rep.Errors = append(rep.Errors, what+": "+err.Error()) }
	if err := d.rdb.Ping(ctx).Err(); err != nil {
		rep.Redis = "unreachable"
		fail("redis", err)
	} else {
		rep.RedisSetup = checkRedisSetup(ctx, d.rdb)
	}
	if out, err := d.relay.Report(ctx); err != nil {
		fail("outbound", err)
	} else {
		rep.Outbound = out
	}
	in := &inboundStatus{}
	if d.receiver != nil {
		rs, sp := d.receiver.ReceiverStatus(keys.DefaultAccount), d.receiver.SpoolStatus()
		in.ReceiverOn, in.Receiver = rs.State == inbound.ReceiverOn, &rs
		in.SpoolPending, in.Spool = sp.Pending, &sp
		if rs.LastError != "" {
			fail("webhook receiver", errors.New(rs.LastError))
		}
		if sp.Stuck != "" {
			fail("spool", errors.New(sp.Stuck))
		}
	}
	if at, ok, err := inbound.LastWebhookAt(ctx, d.rdb, keys.Default); err != nil {
		fail("inbound", err)
	} else if ok {
		in.LastWebhookAt = at
	}
	if sf, err := inbound.ReadSignatureFailures(ctx, d.rdb, keys.Default); err != nil {
		fail("inbound", err)
	} else {
		in.SignatureFailures = sf.Run
	}
	if failed, err := sink.Failed(ctx, d.rdb, keys.Default, time.Time{}); err != nil {
		fail("inbound", err)
	} else {
		in.Failed = len(failed)
	}
	rep.Inbound = in
	if d.reconciler != nil {
		if st, err := d.reconciler.Status(ctx); err != nil {
			fail("reconcile", err)
		} else {
			rep.Reconcile = st
		}
	}
	rep.Credentials = d.credentialState(ctx)
	return rep
}

func (d *daemon) credentialState(ctx context.Context) credentialState {
	switch {
	case d.oauth != nil:
		cs := credentialState{Mode: "oauth-refresh"}
		if st, err := d.oauth.State(ctx); err == nil {
			cs.OAuth = st
		}
		return cs
	case d.cfg.zendesk.OAuthToken != "":
		return credentialState{Mode: "oauth-token"}
	default:
		t := apiTokenRetirement
		return credentialState{Mode: "api-token", APITokenRetiresAt: &t,
			Warning: "Zendesk API tokens stop working on 2027-04-30: move to OAuth with refresh"}
	}
}
