package main

import (
	"context"
	"slices"
	"time"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/relay"
)

// accountState is one account's line in `deskrelay accounts` and in
// /v1/status's accounts: what an operator of many accounts scans for.
type accountState struct {
	Name string `json:"name"`
	// Served is false for an account removed from the accounts file whose
	// data is still in Redis: its queued messages wait until it comes back.
	Served bool `json:"served"`
	// Auth is how the account authenticates: oauth-refresh, oauth-token,
	// api-token ("" when not served).
	Auth string `json:"auth,omitempty"`
	// Credentials is what the relay last saw of them: ok or unauthorized.
	Credentials string `json:"credentials"`
	// Gate is the outbound outage gate: open or closed.
	Gate string `json:"gate"`
	// Backlog counts the messages accepted and neither delivered nor
	// failed; OldestPendingAgeSeconds is the oldest one's age (0: none).
	Backlog                 int64   `json:"backlog"`
	OldestPendingAgeSeconds float64 `json:"oldest_pending_age_seconds"`
	// Failed counts the failed messages kept for replay or discard.
	Failed int64 `json:"failed"`
	// Webhook is the guardian's last check of the webhook or target
	// (active, inactive, unknown; "" when none is configured or checked).
	Webhook string `json:"webhook,omitempty"`
	// CheckpointAgeSeconds is how far behind now the scheduled
	// reconciler's checkpoint is (-1: none yet, or no reconciler).
	CheckpointAgeSeconds float64  `json:"checkpoint_age_seconds"`
	Errors               []string `json:"errors,omitempty"`
}

// accountStates reads every account's state: the accounts served, then
// those deskrelay served before on this Redis that are no longer
// configured. failed is true when some state could not be read.
func (p *parts) accountStates(ctx context.Context) (states []accountState, failed bool) {
	set := p.accountSet()
	for _, a := range set.list {
		st := p.accountState(ctx, a.name(), a.relay)
		st.Served, st.Auth = true, a.authMode()
		if a.reconciler != nil {
			if rs, err := a.reconciler.Status(ctx); err != nil {
				st.Errors = append(st.Errors, "reconcile: "+err.Error())
			} else {
				st.CheckpointAgeSeconds = rs.CheckpointAge
				if rs.Webhook != nil {
					st.Webhook = rs.Webhook.State
				}
			}
		}
		states = append(states, st)
		failed = failed || len(st.Errors) > 0
	}
	known, err := p.rdb.SMembers(ctx, keys.Accounts()).Result()
	if err != nil {
		return append(states, accountState{Name: "?", Errors: []string{"redis: " + err.Error()}}), true
	}
	slices.Sort(known)
	for _, name := range known {
		if set.get(name) != nil {
			continue
		}
		st := p.removedAccountState(ctx, name)
		states = append(states, st)
		failed = failed || len(st.Errors) > 0
	}
	return states, failed
}

// removedAccountState reads the state of an account that is not served,
// through a relay on its keys that never calls Zendesk.
func (p *parts) removedAccountState(ctx context.Context, name string) accountState {
	r, err := relay.New(relay.Config{}, relay.Deps{Redis: p.rdb, Client: p.client, Inspector: p.insp, Space: keys.For(name)})
	if err != nil {
		return accountState{Name: name, Errors: []string{err.Error()}}
	}
	defer r.Close()
	return p.accountState(ctx, name, r)
}

// accountState reads what the account's relay keeps in Redis.
func (p *parts) accountState(ctx context.Context, name string, r *relay.Relay) accountState {
	st := accountState{Name: name, CheckpointAgeSeconds: -1}
	sum, err := r.Summary(ctx)
	if err != nil {
		st.Errors = append(st.Errors, "outbound: "+err.Error())
		return st
	}
	st.Gate, st.Credentials, st.Backlog, st.Failed = sum.Gate, sum.Credentials, sum.Backlog, sum.Failed
	if !sum.Oldest.IsZero() {
		st.OldestPendingAgeSeconds = max(time.Since(sum.Oldest).Seconds(), 0)
	}
	return st
}

// authMode is how the account authenticates with Zendesk.
func (a *account) authMode() string {
	switch {
	case a.cfg.oauth.set():
		return "oauth-refresh"
	case a.cfg.zendesk.OAuthToken != "":
		return "oauth-token"
	default:
		return "api-token"
	}
}

// remember adds the account to the set of accounts served on this Redis
// (keys.Accounts), best-effort: only `deskrelay accounts` reads it.
func (p *parts) remember(ctx context.Context, name string) {
	if ctx != nil {
		_ = p.rdb.SAdd(ctx, keys.Accounts(), name).Err()
	}
}
