package main

import (
	"fmt"
	"strings"

	"github.com/deskrelay/deskrelay/internal/accounts"
	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/zendesk"
)

// accountConfig is what is per Zendesk account: the DESKRELAY_ZENDESK_*,
// webhook and target settings of a single-account deployment (the account
// "default"), or one entry of DESKRELAY_ACCOUNTS_FILE. Everything else
// (Redis, the sink, admin, intervals) is global.
type accountConfig struct {
	name            string
	zendesk         zendesk.Config
	oauth           oauthSettings
	rateLimit       budget.Rate
	updateRateLimit budget.Rate
	webhookID       string
	targetID        int64
	webhookSecret   string
	targetUser      string
	targetPassword  string
	// fingerprint changes when any field does (secrets included): a reload
	// rebuilds an account whose fingerprint changed.
	fingerprint string
}

// singleAccountSettings are the settings of the account default that the
// accounts file replaces: setting one of them together with the file is a
// settings error (which would win?).
var singleAccountSettings = []string{
	"DESKRELAY_ZENDESK_SUBDOMAIN", "DESKRELAY_ZENDESK_URL", "DESKRELAY_ZENDESK_EMAIL",
	"DESKRELAY_ZENDESK_API_TOKEN", "DESKRELAY_ZENDESK_OAUTH_TOKEN", "DESKRELAY_ZENDESK_OAUTH_CLIENT_ID",
	"DESKRELAY_ZENDESK_OAUTH_CLIENT_SECRET", "DESKRELAY_ZENDESK_OAUTH_REFRESH_TOKEN",
	"DESKRELAY_ZENDESK_RATE_LIMIT", "DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT",
	"DESKRELAY_ZENDESK_WEBHOOK_ID", "DESKRELAY_ZENDESK_TARGET_ID", "DESKRELAY_WEBHOOK_SECRET",
	"DESKRELAY_TARGET_USER", "DESKRELAY_TARGET_PASSWORD",
}

// fileAccounts reads DESKRELAY_ACCOUNTS_FILE: every problem of the file on
// its own line (naming the account and the field), and one line for each
// single-account setting that is set as well.
func (v values) fileAccounts(p *problems, path string) []accountConfig {
	for _, s := range settingsFor(singleAccountSettings) {
		if val := v[s.env]; val != "" && val != s.def {
			p.add(v.name(s.env), "set together with DESKRELAY_ACCOUNTS_FILE, which replaces the single-account settings: move it into the file (an account named default keeps this deployment's Redis data)")
		}
	}
	accts, err := loadAccounts(path)
	if err != nil {
		*p = append(*p, strings.Split(err.Error(), "\n")...)
	}
	return accts
}

// loadAccounts reads the accounts file into accountConfigs.
func loadAccounts(path string) ([]accountConfig, error) {
	f, err := accounts.Load(path)
	if err != nil {
		return nil, err
	}
	out := make([]accountConfig, 0, len(f.Accounts))
	for _, a := range f.Accounts {
		if a.Name == "all" { // --account all means every account
			return nil, fmt.Errorf("accounts file %s: account %q: name: all is reserved (--account all names every account): choose another name", path, a.Name)
		}
		out = append(out, fromFile(a))
	}
	return out, nil
}

// fromFile is one account of the accounts file.
func fromFile(a accounts.Account) accountConfig {
	return accountConfig{
		name: a.Name,
		zendesk: zendesk.Config{
			Subdomain:  a.Subdomain,
			BaseURL:    a.URL,
			Email:      a.Email,
			APIToken:   a.APIToken,
			OAuthToken: a.OAuthToken,
			UserAgent:  userAgent(),
		},
		oauth:           oauthSettings{clientID: a.OAuthClientID, clientSecret: a.OAuthClientSecret, refreshToken: a.OAuthRefreshToken},
		rateLimit:       a.RateLimit,
		updateRateLimit: a.UpdateRateLimit,
		webhookID:       a.WebhookID,
		targetID:        a.TargetID,
		webhookSecret:   a.WebhookSecret,
		targetUser:      a.TargetUser,
		targetPassword:  a.TargetPassword,
		fingerprint:     a.Fingerprint(),
	}
}

// checkAccountsNeedSink: an account with a webhook or target sends
// Zendesk's updates to the sink, which is global.
func (c *config) checkAccountsNeedSink(p *problems) {
	if c.sinkURL != "" {
		return
	}
	for _, a := range c.accounts {
		if a.webhookID != "" || a.targetID != 0 || a.webhookSecret != "" {
			p.add("DESKRELAY_SINK_URL", "required: account %q has a webhook or target, and Zendesk's updates need somewhere to go", a.name)
			return
		}
	}
}

// account returns the configured account name, or false.
func (c *config) account(name string) (accountConfig, bool) {
	for _, a := range c.accounts {
		if a.name == name {
			return a, true
		}
	}
	return accountConfig{}, false
}

// accountNames are the configured accounts' names, in the file's order.
func (c *config) accountNames() []string {
	out := make([]string, len(c.accounts))
	for i, a := range c.accounts {
		out[i] = a.name
	}
	return out
}
