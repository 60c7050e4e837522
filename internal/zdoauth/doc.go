// Package zdoauth keeps deskrelay's Zendesk OAuth access token fresh: it
// implements zendesk.TokenSource with the refresh-token grant
// (POST {account}/oauth/tokens, grant_type=refresh_token) through
// golang.org/x/oauth2.
//
// The current access token, its expiry and the current (rotated) refresh
// token live in Redis (keys.OAuthToken), so every replica uses the same ones.
// Only one replica refreshes at a time (keys.OAuthRefreshLock, an
// internal/lease Lease); the others wait for its result instead of refreshing
// themselves, because Zendesk rotates the refresh token on every use and
// deletes the previous access and refresh tokens: two replicas refreshing
// with the same refresh token would invalidate each other. A result is stored
// only if the refresh token it consumed is still the stored one
// (compare-and-set), so a late or concurrent refresh never overwrites a newer
// state.
//
// A refresh token set in Config that was never configured before (a sha256
// of every configured one is kept) replaces the stored one at start: that is
// how an operator recovers after a revocation. A rejected refresh token
// (invalid_grant and other 400/401/403 answers of the token endpoint) gives
// a *zendesk.Error of KindUnauthorized, and is remembered so that further
// calls fail at once without asking Zendesk again until new credentials are
// configured; transport errors and 5xx give KindTemporary.
//
// Tokens and the client secret never appear in errors or logs.
//
// It imports zendesk and internal/keys only; it must not import relay,
// inbound, reconcile or package main.
package zdoauth
