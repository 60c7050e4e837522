package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/httpx"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/sink"
)

// statusReport is GET /v1/status: what an operator wants to see first.
// Accounts summarises every account; the details (outbound, inbound,
// reconcile, credentials) are of one account: ?account=NAME, or without it
// the account default when it is served.
type statusReport struct {
	Time         time.Time            `json:"time"`
	Version      string               `json:"version"`
	Redis        string               `json:"redis"` // "ok" or the problem
	RedisSetup   redisSetup           `json:"redis_setup"`
	Accounts     []accountState       `json:"accounts"`
	AccountsFile *accountsFileState   `json:"accounts_file,omitempty"`
	Spool        *inbound.SpoolStatus `json:"spool,omitempty"`
	Account      string               `json:"account,omitempty"` // whose details follow
	Outbound     any                  `json:"outbound,omitempty"`
	Inbound      *inboundStatus       `json:"inbound,omitempty"`
	Reconcile    any                  `json:"reconcile,omitempty"`
	Credentials  *credentialState     `json:"credentials,omitempty"`
	Errors       []string             `json:"errors,omitempty"`
}

// accountsFileState is DESKRELAY_ACCOUNTS_FILE and its last reload.
type accountsFileState struct {
	Path       string        `json:"path"`
	LastReload *reloadReport `json:"last_reload,omitempty"`
}

type inboundStatus struct {
	// ReceiverOn is true when the webhook receiver verifies the account's
	// webhooks (receiver.state "on").
	ReceiverOn bool                    `json:"receiver_on"`
	Receiver   *inbound.ReceiverStatus `json:"receiver,omitempty"`
	// SpoolPending is spool.pending (the spool is the process's, shared by
	// every account), kept for existing scripts.
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
	name := r.URL.Query().Get("account")
	if name != "" && d.account(name) == nil {
		httpx.WriteError(w, http.StatusNotFound, "unknown_account", fmt.Sprintf("account %q is not served (configured: %s)", name, strings.Join(d.accountSet().names(), ", ")))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, d.status(ctx, cmp.Or(name, keys.DefaultAccount)))
}

// status is the summary of every account, and the details of the account
// named detail (none when it is not served).
func (d *daemon) status(ctx context.Context, detail string) statusReport {
	v, _, _ := buildVersion()
	rep := statusReport{Time: time.Now().UTC(), Version: v, Redis: "ok"}
	fail := func(what string, err error) { rep.Errors = append(rep.Errors, what+": "+err.Error()) }
	if err := d.rdb.Ping(ctx).Err(); err != nil {
		rep.Redis = "unreachable"
		fail("redis", err)
	} else {
		rep.RedisSetup = checkRedisSetup(ctx, d.rdb)
	}
	rep.Accounts, _ = d.accountStates(ctx)
	if d.cfg.accountsFile != "" {
		rep.AccountsFile = &accountsFileState{Path: d.cfg.accountsFile, LastReload: d.reload.get()}
		if lr := rep.AccountsFile.LastReload; lr != nil && !lr.OK {
			fail("accounts file", errors.New("the last reload failed; the running accounts were kept: "+strings.Join(lr.Errors, "; ")))
		}
	}
	if d.receiver != nil {
		sp := d.receiver.SpoolStatus()
		rep.Spool = &sp
		if sp.Stuck != "" {
			fail("spool", errors.New(sp.Stuck))
		}
	}
	if a := d.account(detail); a != nil {
		rep.Account = a.name()
		d.accountDetails(ctx, a, &rep, fail)
	}
	return rep
}

// accountDetails adds one account's outbound, inbound, reconcile and
// credentials details to rep.
func (d *daemon) accountDetails(ctx context.Context, a *account, rep *statusReport, fail func(string, error)) {
	if out, err := a.relay.Report(ctx); err != nil {
		fail("outbound", err)
	} else {
		rep.Outbound = out
	}
	in := &inboundStatus{}
	if d.receiver != nil {
		rs := d.receiver.ReceiverStatus(a.name())
		in.ReceiverOn, in.Receiver = rs.State == inbound.ReceiverOn, &rs
		in.SpoolPending, in.Spool = rep.Spool.Pending, rep.Spool
		if rs.LastError != "" {
			fail("webhook receiver", errors.New(rs.LastError))
		}
	}
	if at, ok, err := inbound.LastWebhookAt(ctx, d.rdb, a.space); err != nil {
		fail("inbound", err)
	} else if ok {
		in.LastWebhookAt = at
	}
	if sf, err := inbound.ReadSignatureFailures(ctx, d.rdb, a.space); err != nil {
		fail("inbound", err)
	} else {
		in.SignatureFailures = sf.Run
	}
	if failed, err := sink.Failed(ctx, d.rdb, a.space, time.Time{}); err != nil {
		fail("inbound", err)
	} else {
		in.Failed = len(failed)
	}
	rep.Inbound = in
	if a.reconciler != nil {
		if st, err := a.reconciler.Status(ctx); err != nil {
			fail("reconcile", err)
		} else {
			rep.Reconcile = st
		}
	}
	cs := a.credentialState(ctx)
	rep.Credentials = &cs
}

func (a *account) credentialState(ctx context.Context) credentialState {
	switch {
	case a.oauth != nil:
		cs := credentialState{Mode: "oauth-refresh"}
		if st, err := a.oauth.State(ctx); err == nil {
			cs.OAuth = st
		}
		return cs
	case a.cfg.zendesk.OAuthToken != "":
		return credentialState{Mode: "oauth-token"}
	default:
		t := apiTokenRetirement
		return credentialState{Mode: "api-token", APITokenRetiresAt: &t,
			Warning: "Zendesk API tokens stop working on 2027-04-30: move to OAuth with refresh"}
	}
}
