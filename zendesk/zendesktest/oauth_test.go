package zendesktest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
	Error        string `json:"error"`
}

func refresh(t *testing.T, srv *zendesktest.Server, rt string, form bool) (int, tokens) {
	t.Helper()
	var r reply
	if form {
		body := url.Values{"grant_type": {"refresh_token"}, "client_id": {"deskrelay"}, "client_secret": {"cs"}, "refresh_token": {rt}}.Encode()
		r = call(t, srv, "POST", "/oauth/tokens", body, "Content-Type", "application/x-www-form-urlencoded", "Authorization", "")
	} else {
		r = call(t, srv, "POST", "/oauth/tokens", map[string]string{"grant_type": "refresh_token", "client_id": "deskrelay", "client_secret": "cs", "refresh_token": rt}, "Authorization", "")
	}
	var tk tokens
	r.decode(t, &tk)
	return r.status, tk
}

func TestOAuthRefresh(t *testing.T) {
	clk := newClock()
	srv := zendesktest.NewServer(t, zendesktest.Config{Now: clk.Now, AccessTokenTTL: 10 * time.Minute})
	srv.OAuthClient("deskrelay", "cs")
	rt := srv.IssueRefreshToken()

	status, tk := refresh(t, srv, rt, true)
	if status != http.StatusOK || tk.TokenType != "bearer" || tk.ExpiresIn != 600 || tk.AccessToken == "" || tk.RefreshToken == "" || tk.RefreshToken == rt {
		t.Fatalf("refresh: %d %+v", status, tk)
	}
	wantStatus(t, call(t, srv, "GET", "/api/v2/users/me", nil, "Authorization", "Bearer "+tk.AccessToken), http.StatusOK)
	for _, r := range srv.Requests() {
		if strings.Contains(string(r.Body), rt) || strings.Contains(string(r.Body), "cs") {
			t.Errorf("recorded secrets: %s", r.Body)
		}
	}

	t.Run("OldRefreshTokenIsSpent", func(t *testing.T) {
		if status, tk := refresh(t, srv, rt, false); status != http.StatusBadRequest || tk.Error != "invalid_grant" {
			t.Errorf("reuse: %d %+v", status, tk)
		}
	})
	t.Run("AccessTokenExpires", func(t *testing.T) {
		clk.Advance(10 * time.Minute)
		wantStatus(t, call(t, srv, "GET", "/api/v2/users/me", nil, "Authorization", "Bearer "+tk.AccessToken), http.StatusUnauthorized)
	})
	t.Run("RotatedTokenWorksWithJSONBody", func(t *testing.T) {
		status, next := refresh(t, srv, tk.RefreshToken, false)
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		tk = next
		if srv.Refreshes() != 2 {
			t.Errorf("Refreshes = %d", srv.Refreshes())
		}
	})
	t.Run("RevokedRefreshTokens", func(t *testing.T) {
		srv.RevokeRefreshTokens()
		if status, got := refresh(t, srv, tk.RefreshToken, true); status != http.StatusBadRequest || got.Error != "invalid_grant" {
			t.Errorf("after revoke: %d %+v", status, got)
		}
	})
	t.Run("WrongClientSecret", func(t *testing.T) {
		srv.OAuthClient("deskrelay", "other")
		if status, got := refresh(t, srv, srv.IssueRefreshToken(), true); status != http.StatusUnauthorized || got.Error != "invalid_client" {
			t.Errorf("wrong secret: %d %+v", status, got)
		}
	})
}
