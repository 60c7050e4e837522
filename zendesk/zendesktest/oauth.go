package zendesktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

type oauthState struct {
	clients   map[string]string    // client id → secret
	refresh   map[string]string    // live refresh token → client id
	access    map[string]time.Time // issued access token → expiry
	refreshes int
	first     string // the client registered first
}

func (o *oauthState) init() {
	o.clients = map[string]string{}
	o.refresh = map[string]string{}
	o.access = map[string]time.Time{}
}

func randomToken(prefix string) string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// OAuthClient registers an OAuth client that may refresh tokens at
// POST /oauth/tokens.
func (s *Server) OAuthClient(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.clients[id] = secret
	if s.oauth.first == "" {
		s.oauth.first = id
	}
}

// IssueRefreshToken returns a new refresh token for the OAuth client
// registered first with OAuthClient. Refresh tokens rotate: each is valid for one refresh.
func (s *Server) IssueRefreshToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	client := s.oauth.first
	if client == "" {
		s.fail("IssueRefreshToken: register an OAuth client first")
		return ""
	}
	tok := randomToken("rt_")
	s.oauth.refresh[tok] = client
	return tok
}

// IssueAccessToken returns a new access token valid for Config.AccessTokenTTL.
func (s *Server) IssueAccessToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := randomToken("at_")
	s.oauth.access[tok] = s.now().Add(s.cfg.AccessTokenTTL)
	return tok
}

// RevokeRefreshTokens invalidates every refresh token issued so far.
func (s *Server) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.refresh = map[string]string{}
}

// ExpireAccessTokens makes every issued access token expire now (fixed
// Config.OAuthTokens are not affected): the next request with one gets 401.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.access = map[string]time.Time{}
}

// Refreshes returns how many successful token refreshes the fake answered.
func (s *Server) Refreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oauth.refreshes
}

func oauthError(w *resp, status int, code, description string) {
	w.json(status, map[string]string{"error": code, "error_description": description})
}

// handleOAuthToken serves POST /oauth/tokens with grant_type=refresh_token,
// reading a JSON or form body (client credentials may also come as basic auth).
func handleOAuthToken(s *Server, r *request, w *resp) {
	var in struct {
		GrantType    string `json:"grant_type"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		RefreshToken string `json:"refresh_token"`
		Scope        string `json:"scope"`
	}
	ct := r.header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/json") {
		if err := json.Unmarshal(r.body, &in); err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", "The request body could not be parsed.")
			return
		}
	} else {
		v, err := url.ParseQuery(string(r.body))
		if err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", "The request body could not be parsed.")
			return
		}
		in.GrantType, in.ClientID, in.ClientSecret = v.Get("grant_type"), v.Get("client_id"), v.Get("client_secret")
		in.RefreshToken, in.Scope = v.Get("refresh_token"), v.Get("scope")
	}
	if in.ClientID == "" {
		if hr, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "/", nil); err == nil {
			hr.Header.Set("Authorization", r.header.Get("Authorization"))
			if u, p, ok := hr.BasicAuth(); ok {
				in.ClientID, in.ClientSecret = u, p
			}
		}
	}
	if in.GrantType != "refresh_token" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if secret, ok := s.oauth.clients[in.ClientID]; !ok || secret != in.ClientSecret || s.revoked {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.")
		return
	}
	if client, ok := s.oauth.refresh[in.RefreshToken]; !ok || client != in.ClientID {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.")
		return
	}
	delete(s.oauth.refresh, in.RefreshToken) // rotation: the old one is spent
	access, refresh := randomToken("at_"), randomToken("rt_")
	s.oauth.access[access] = s.now().Add(s.cfg.AccessTokenTTL)
	s.oauth.refresh[refresh] = in.ClientID
	s.oauth.refreshes++
	scope := in.Scope
	if scope == "" {
		scope = "read write"
	}
	w.json(http.StatusOK, map[string]any{
		"access_token":             access,
		"refresh_token":            refresh,
		"token_type":               "bearer",
		"scope":                    scope,
		"expires_in":               int(s.cfg.AccessTokenTTL / time.Second),
		"refresh_token_expires_in": int((30 * 24 * time.Hour) / time.Second),
	})
}
