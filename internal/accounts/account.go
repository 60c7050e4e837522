package accounts

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/budget"
)

// Ways of authenticating, as Account.Auth names them.
const (
	AuthAPIToken     = "api_token"     // email + api_token_file
	AuthOAuthToken   = "oauth_token"   // oauth_token_file
	AuthOAuthRefresh = "oauth_refresh" // oauth_client_id + oauth_client_secret_file + oauth_refresh_token_file
)

// Account is one Zendesk account of the accounts file: the per-account
// forms of the single-account settings. Exactly one of Subdomain and URL
// is set, and exactly one way of authenticating (Auth). The secrets
// (APIToken, OAuthToken, OAuthClientSecret, OAuthRefreshToken,
// WebhookSecret, TargetPassword) are the contents of their files.
type Account struct {
	Name string // validate.AccountName

	Subdomain string // "acme" for acme.zendesk.com (lower case)
	URL       string // the full base URL instead, without a trailing slash

	Email             string
	APIToken          string
	OAuthToken        string
	OAuthClientID     string
	OAuthClientSecret string
	OAuthRefreshToken string

	RateLimit       budget.Rate // rate_limit; default 50%
	UpdateRateLimit budget.Rate // update_rate_limit; default 70%

	WebhookID      string // exclusive with TargetID
	WebhookSecret  string // optional: read from Zendesk when empty
	TargetID       int64  // a legacy target's id, 0 when none
	TargetUser     string // goes with TargetPassword
	TargetPassword string
}

// BaseURL is the account's Zendesk address: URL, or the subdomain's
// https://<subdomain>.zendesk.com.
func (a Account) BaseURL() string {
	if a.URL != "" {
		return a.URL
	}
	return "https://" + a.Subdomain + ".zendesk.com"
}

// Auth names the account's way of authenticating: AuthAPIToken,
// AuthOAuthToken or AuthOAuthRefresh.
func (a Account) Auth() string {
	switch {
	case a.APIToken != "":
		return AuthAPIToken
	case a.OAuthToken != "":
		return AuthOAuthToken
	case a.OAuthRefreshToken != "":
		return AuthOAuthRefresh
	}
	return ""
}

// String describes the account without any secret:
// `acme (https://acme.zendesk.com, oauth_refresh, rate 50%, updates 70%, webhook 01H…)`.
func (a Account) String() string {
	parts := []string{a.BaseURL(), a.Auth(), "rate " + a.RateLimit.String(), "updates " + a.UpdateRateLimit.String()}
	if a.WebhookID != "" {
		parts = append(parts, "webhook "+a.WebhookID)
	}
	if a.TargetID != 0 {
		parts = append(parts, "target "+strconv.FormatInt(a.TargetID, 10))
	}
	return a.Name + " (" + strings.Join(parts, ", ") + ")"
}

// GoString is String, so that %#v shows no secret either.
func (a Account) GoString() string { return "accounts.Account{" + a.String() + "}" }

// MarshalZerologObject logs the account without any secret.
func (a Account) MarshalZerologObject(e *zerolog.Event) {
	e.Str("account", a.Name).Str("zendesk", a.BaseURL()).Str("auth", a.Auth()).
		Stringer("rate_limit", a.RateLimit).Stringer("update_rate_limit", a.UpdateRateLimit)
	if a.Email != "" {
		e.Str("email", a.Email)
	}
	if a.OAuthClientID != "" {
		e.Str("oauth_client_id", a.OAuthClientID)
	}
	if a.WebhookID != "" {
		e.Str("webhook_id", a.WebhookID)
	}
	if a.TargetID != 0 {
		e.Int64("target_id", a.TargetID)
	}
	if a.TargetUser != "" {
		e.Str("target_user", a.TargetUser)
	}
}

// fingerprintKey keys Fingerprint's HMAC, so that a fingerprint, even
// logged, cannot be used to guess a short secret. Fingerprints are
// therefore comparable within one process only.
var fingerprintKey = func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never fails (Go 1.24+)
	return k
}()

// Fingerprint is a digest of every field of the account, secrets included:
// two loads of the same account have the same fingerprint, and a change to
// any field changes it. It shows nothing of the secrets, and it is
// comparable within one process only (the digest is keyed per process).
func (a Account) Fingerprint() string {
	h := hmac.New(sha256.New, fingerprintKey)
	for _, f := range []string{
		a.Name, a.Subdomain, a.URL, a.Email, a.APIToken, a.OAuthToken,
		a.OAuthClientID, a.OAuthClientSecret, a.OAuthRefreshToken,
		a.RateLimit.String(), a.UpdateRateLimit.String(),
		a.WebhookID, a.WebhookSecret, strconv.FormatInt(a.TargetID, 10), a.TargetUser, a.TargetPassword,
	} {
		h.Write(binary.AppendUvarint(nil, uint64(len(f))))
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}
