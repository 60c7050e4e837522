package zdoauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/internal/zdoauth"
	"github.com/deskrelay/deskrelay/zendesk"
)

type env struct {
	ts    *tokenServer
	rdb   redis.UniversalClient
	clock *clock
	logs  *testutil.SyncBuffer
	reg   *prometheus.Registry
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := newClock()
	return &env{ts: newTokenServer(t, c.Now), rdb: redistest.New(t).Client, clock: c,
		logs: &testutil.SyncBuffer{}, reg: prometheus.NewRegistry()}
}

func (e *env) config(refreshToken string) zdoauth.Config {
	return zdoauth.Config{
		BaseURL:      e.ts.URL(),
		ClientID:     e.ts.clientID,
		ClientSecret: e.ts.clientSecret,
		RefreshToken: refreshToken,
		Now:          e.clock.Now,
		PollInterval: 5 * time.Millisecond,
		Metrics:      e.reg,
	}
}

// mustSource returns a Source ("a replica") configured with refreshToken.
func (e *env) mustSource(t *testing.T, refreshToken string, edit ...func(*zdoauth.Config)) *zdoauth.Source {
	t.Helper()
	cfg := e.config(refreshToken)
	for _, f := range edit {
		f(&cfg)
	}
	s, err := zdoauth.New(cfg, e.rdb, zerolog.New(e.logs).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func mustToken(t *testing.T, s *zdoauth.Source) string {
	t.Helper()
	tok, err := s.Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if tok == "" {
		t.Fatal("Token: empty")
	}
	return tok
}

func refreshes(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	return metricValue(t, reg, "deskrelay_zendesk_oauth_refreshes_total", "outcome", outcome)
}

// metricValue sums the counter name over the series whose label has value
// (every series when label is "").
func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					match = true
				}
			}
			if match {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestNewValidates(t *testing.T) {
	rdb := redistest.New(t).Client
	ok := zdoauth.Config{BaseURL: "https://acme.zendesk.com", ClientID: "id", ClientSecret: "secret", RefreshToken: "rt"}
	tests := []struct {
		name string
		edit func(*zdoauth.Config)
		want string // substring of the error; "" for none
	}{
		{"Valid", func(*zdoauth.Config) {}, ""},
		{"SubdomainInsteadOfURL", func(c *zdoauth.Config) { c.BaseURL, c.Subdomain = "", "acme" }, ""},
		{"NoURL", func(c *zdoauth.Config) { c.BaseURL = "" }, "zdoauth: Subdomain: "},
		{"BadScheme", func(c *zdoauth.Config) { c.BaseURL = "ftp://acme" }, "zdoauth: BaseURL: "},
		{"CredentialsInURL", func(c *zdoauth.Config) { c.BaseURL = "https://u:p@acme.zendesk.com" }, "zdoauth: BaseURL: "},
		{"NoClientID", func(c *zdoauth.Config) { c.ClientID = "" }, "zdoauth: ClientID: "},
		{"NoClientSecret", func(c *zdoauth.Config) { c.ClientSecret = "" }, "zdoauth: ClientSecret: "},
		{"NoRefreshToken", func(c *zdoauth.Config) { c.RefreshToken = "" }, "zdoauth: RefreshToken: "},
		{"WhitespaceInRefreshToken", func(c *zdoauth.Config) { c.RefreshToken = "rt\n" }, "zdoauth: RefreshToken: must not contain whitespace"},
		{"LockShorterThanTimeout", func(c *zdoauth.Config) { c.Timeout, c.LockTTL = time.Minute, time.Second }, "LockTTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := zdoauth.New(cfg, rdb, zerolog.Nop())
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("New: error %v, want one containing %q", err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), "secret") && !strings.Contains(err.Error(), "CLIENT_SECRET")) {
				t.Fatalf("error echoes a value: %v", err)
			}
		})
	}
}

func TestToken(t *testing.T) {
	t.Run("FirstUseRefreshesWithConfiguredToken", func(t *testing.T) {
		e := newEnv(t)
		s := e.mustSource(t, e.ts.issue())
		a := mustToken(t, s)
		if b := mustToken(t, s); b != a {
			t.Fatalf("second Token = new token, want the stored one")
		}
		if got := e.ts.count(); got != 1 {
			t.Fatalf("token requests = %d, want 1", got)
		}
		if got := refreshes(t, e.reg, "ok"); got != 1 {
			t.Fatalf("refreshes{ok} = %v, want 1", got)
		}
	})
	t.Run("ReplicasShareTheStoredToken", func(t *testing.T) {
		e := newEnv(t)
		rt := e.ts.issue()
		a := mustToken(t, e.mustSource(t, rt))
		if b := mustToken(t, e.mustSource(t, rt)); b != a {
			t.Fatal("second replica got a different token, want the stored one")
		}
		if got := e.ts.count(); got != 1 {
			t.Fatalf("token requests = %d, want 1", got)
		}
	})
	t.Run("RefreshesShortlyBeforeExpiry", func(t *testing.T) {
		e := newEnv(t)
		s := e.mustSource(t, e.ts.issue())
		a := mustToken(t, s)
		e.clock.Add(time.Hour - 4*time.Minute) // inside the 5-minute window
		b := mustToken(t, s)
		if b == a {
			t.Fatal("Token inside the refresh window returned the old token")
		}
		if got := e.ts.count(); got != 2 {
			t.Fatalf("token requests = %d, want 2", got)
		}
	})
	t.Run("RefreshesExpiredToken", func(t *testing.T) {
		e := newEnv(t)
		s := e.mustSource(t, e.ts.issue())
		a := mustToken(t, s)
		e.clock.Add(2 * time.Hour)
		if b := mustToken(t, s); b == a {
			t.Fatal("Token after expiry returned the expired token")
		}
	})
	t.Run("EarlyRefreshFailureKeepsValidToken", func(t *testing.T) {
		e := newEnv(t)
		s := e.mustSource(t, e.ts.issue())
		a := mustToken(t, s)
		e.clock.Add(time.Hour - 4*time.Minute)
		e.ts.setStatus(http.StatusInternalServerError)
		if b := mustToken(t, s); b != a {
			t.Fatal("Token after a failed early refresh did not keep the still-valid token")
		}
		if b := mustToken(t, s); b != a {
			t.Fatal("Token changed")
		}
		if got := e.ts.count(); got != 2 {
			t.Fatalf("token requests = %d, want 2 (no retry before RetryEarly)", got)
		}
		st, err := s.State(context.Background())
		if err != nil || st.LastRefreshError == "" || st.Unauthorized {
			t.Fatalf("State = %+v, %v; want the temporary error recorded", st, err)
		}
	})
}

func TestRefresh(t *testing.T) {
	t.Run("ReturnsStoredWhenAlreadyRefreshed", func(t *testing.T) {
		e := newEnv(t)
		rt := e.ts.issue()
		a, b := e.mustSource(t, rt), e.mustSource(t, rt)
		stale := mustToken(t, a)
		fresh, err := a.Refresh(context.Background(), stale)
		if err != nil || fresh == stale {
			t.Fatalf("Refresh = %v; want a new token", err)
		}
		got, err := b.Refresh(context.Background(), stale)
		if err != nil || got != fresh {
			t.Fatalf("other replica's Refresh(stale) = %v, want the stored fresh token", err)
		}
		if n := e.ts.count(); n != 2 {
			t.Fatalf("token requests = %d, want 2", n)
		}
	})
	t.Run("ConcurrentReplicasMakeOneRequest", func(t *testing.T) {
		e := newEnv(t)
		rt := e.ts.issue()
		const replicas, callers = 4, 8
		srcs := make([]*zdoauth.Source, replicas)
		for i := range srcs {
			srcs[i] = e.mustSource(t, rt)
		}
		stale := mustToken(t, srcs[0])
		gate := make(chan struct{})
		e.ts.setGate(gate)
		var wg sync.WaitGroup
		got := make([]string, replicas*callers)
		errs := make([]error, replicas*callers)
		for i := range got {
			wg.Go(func() { got[i], errs[i] = srcs[i%replicas].Refresh(context.Background(), stale) })
		}
		// Release the token endpoint once the refresh request is in and
		// every other replica is waiting for it.
		deadline := time.Now().Add(10 * time.Second)
		for (e.ts.count() < 2 || metricValue(t, e.reg, "deskrelay_zendesk_oauth_refresh_waits_total", "", "") < replicas-1) &&
			time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		close(gate)
		wg.Wait()
		for i := range got {
			if errs[i] != nil || got[i] == stale || got[i] != got[0] {
				t.Fatalf("caller %d: Refresh = %v (same as others: %v)", i, errs[i], got[i] == got[0])
			}
		}
		if n := e.ts.count(); n != 2 {
			t.Fatalf("token requests = %d, want 2 (first token + one refresh)", n)
		}
		if w := metricValue(t, e.reg, "deskrelay_zendesk_oauth_refresh_waits_total", "", ""); w < replicas-1 {
			t.Fatalf("refresh waits = %v, want at least %d (the other replicas waited)", w, replicas-1)
		}
	})
	t.Run("RevokedIsUnauthorizedAndNotRetried", func(t *testing.T) {
		e := newEnv(t)
		s := e.mustSource(t, e.ts.issue())
		stale := mustToken(t, s)
		e.ts.revoke()
		_, err := s.Refresh(context.Background(), stale)
		if ze := zendesk.AsError(err); ze == nil || ze.Kind != zendesk.KindUnauthorized || ze.Status != 400 || ze.Name != "invalid_grant" {
			t.Fatalf("Refresh after revocation = %v, want KindUnauthorized 400 invalid_grant", err)
		}
		_, err = s.Refresh(context.Background(), stale)
		if ze := zendesk.AsError(err); ze == nil || ze.Kind != zendesk.KindUnauthorized {
			t.Fatalf("second Refresh = %v, want KindUnauthorized", err)
		}
		e.clock.Add(2 * time.Hour)
		if _, err := s.Token(context.Background()); zendesk.AsError(err) == nil || zendesk.AsError(err).Kind != zendesk.KindUnauthorized {
			t.Fatalf("Token after expiry = %v, want KindUnauthorized", err)
		}
		if n := e.ts.count(); n != 2 {
			t.Fatalf("token requests = %d, want 2 (a rejected refresh token is not tried again)", n)
		}
		st, err := s.State(context.Background())
		if err != nil || !st.Unauthorized || !strings.Contains(st.LastRefreshError, "invalid_grant") {
			t.Fatalf("State = %+v, %v; want Unauthorized with invalid_grant", st, err)
		}
		if got := refreshes(t, e.reg, "unauthorized"); got != 1 {
			t.Fatalf("refreshes{unauthorized} = %v, want 1", got)
		}
	})
	t.Run("NewConfiguredTokenRecovers", func(t *testing.T) {
		e := newEnv(t)
		old := e.ts.issue()
		s := e.mustSource(t, old)
		stale := mustToken(t, s)
		e.ts.revoke()
		if _, err := s.Refresh(context.Background(), stale); zendesk.AsError(err) == nil {
			t.Fatalf("Refresh after revocation = %v, want an error", err)
		}
		// The operator configures a new refresh token; a replica restarts with it.
		s2 := e.mustSource(t, e.ts.issue())
		tok := mustToken(t, s2)
		if tok == stale {
			t.Fatal("new replica returned the revoked token")
		}
		// The old replica, still running, picks the new token up on its next 401.
		if got, err := s.Refresh(context.Background(), stale); err != nil || got != tok {
			t.Fatalf("old replica Refresh = %v, want the new stored token", err)
		}
		// A replica restarting with the old setting does not reinstate it.
		s3 := e.mustSource(t, old)
		if got := mustToken(t, s3); got != tok {
			t.Fatal("a replica with the previously configured refresh token replaced the stored state")
		}
		st, err := s3.State(context.Background())
		if err != nil || st.Unauthorized || st.LastRefreshError != "" || !st.HasAccessToken {
			t.Fatalf("State = %+v, %v; want healthy", st, err)
		}
	})
	t.Run("LateResultNeverOverwritesNewlyConfiguredToken", func(t *testing.T) {
		e := newEnv(t)
		a := e.mustSource(t, e.ts.issue())
		stale := mustToken(t, a)
		gate := make(chan struct{})
		e.ts.setGate(gate)
		done := make(chan error, 1)
		go func() { _, err := a.Refresh(context.Background(), stale); done <- err }()
		testutil.WaitFor(t, 10*time.Second, func() bool { return e.ts.count() == 2 }, "the refresh request")
		// Meanwhile an operator configures a new refresh token.
		newRT := e.ts.issue()
		if err := e.mustSource(t, newRT).Init(context.Background()); err != nil {
			t.Fatal(err)
		}
		close(gate)
		if err := <-done; err != nil {
			t.Fatalf("in-flight Refresh: %v", err)
		}
		got, err := e.rdb.HGet(context.Background(), keys.For(zdoauth.DefaultAccount).OAuthToken(), "refresh").Result()
		if err != nil || got != newRT {
			t.Fatalf("stored refresh token replaced by the late result (err %v); want the newly configured one", err)
		}
		if tok := mustToken(t, a); tok == stale {
			t.Fatal("Token after the new configuration returned the old token")
		}
	})
	t.Run("WrongClientSecretIsUnauthorized", func(t *testing.T) {
		e := newEnv(t)
		rt := e.ts.issue()
		s := e.mustSource(t, rt, func(c *zdoauth.Config) { c.ClientSecret = "wrong-secret-0000" })
		_, err := s.Token(context.Background())
		if ze := zendesk.AsError(err); ze == nil || ze.Kind != zendesk.KindUnauthorized || ze.Status != 401 {
			t.Fatalf("Token = %v, want KindUnauthorized 401", err)
		}
		// Fixing the secret (same refresh token) works: the rejection was for other credentials.
		mustToken(t, e.mustSource(t, rt))
		if n := e.ts.count(); n != 2 {
			t.Fatalf("token requests = %d, want 2", n)
		}
	})
	t.Run("ServerErrorsAreTemporary", func(t *testing.T) {
		tests := []struct {
			name   string
			status int
			want   zendesk.Kind
			after  time.Duration
		}{
			{"InternalServerError", 500, zendesk.KindTemporary, 0},
			{"BadGateway", 502, zendesk.KindTemporary, 0},
			{"TooManyRequests", 429, zendesk.KindRateLimited, 7 * time.Second},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := newEnv(t)
				s := e.mustSource(t, e.ts.issue())
				e.ts.setStatus(tt.status)
				_, err := s.Token(context.Background())
				ze := zendesk.AsError(err)
				if ze == nil || ze.Kind != tt.want || ze.Status != tt.status || ze.RetryAfter != tt.after {
					t.Fatalf("Token = %#v, want kind %s status %d retry after %s", ze, tt.want, tt.status, tt.after)
				}
				e.ts.setStatus(0)
				mustToken(t, s) // the refresh token is intact
			})
		}
	})
	t.Run("UnreachableIsTemporary", func(t *testing.T) {
		e := newEnv(t)
		s := e.mustSource(t, e.ts.issue(), func(c *zdoauth.Config) { c.BaseURL = "http://127.0.0.1:1" })
		_, err := s.Token(context.Background())
		if ze := zendesk.AsError(err); ze == nil || ze.Kind != zendesk.KindTemporary || ze.Status != 0 {
			t.Fatalf("Token = %v, want KindTemporary without status", err)
		}
	})
	t.Run("DeadLockHolderIsTakenOver", func(t *testing.T) {
		e := newEnv(t)
		s := e.mustSource(t, e.ts.issue(), func(c *zdoauth.Config) {
			c.Timeout, c.LockTTL = 200*time.Millisecond, 300*time.Millisecond
		})
		// A replica died holding the lock.
		if err := e.rdb.Set(context.Background(), keys.For(zdoauth.DefaultAccount).OAuthRefreshLock(), "dead", 300*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		mustToken(t, s)
		if n := e.ts.count(); n != 1 {
			t.Fatalf("token requests = %d, want 1", n)
		}
	})
	t.Run("WaitTimesOutAsTemporary", func(t *testing.T) {
		e := newEnv(t)
		s := e.mustSource(t, e.ts.issue(), func(c *zdoauth.Config) { c.WaitTimeout = 100 * time.Millisecond })
		if err := e.rdb.Set(context.Background(), keys.For(zdoauth.DefaultAccount).OAuthRefreshLock(), "busy", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		_, err := s.Token(context.Background())
		if ze := zendesk.AsError(err); ze == nil || ze.Kind != zendesk.KindTemporary {
			t.Fatalf("Token = %v, want KindTemporary", err)
		}
		if n := e.ts.count(); n != 0 {
			t.Fatalf("token requests = %d, want 0 while another replica holds the lock", n)
		}
	})
}

func TestNoSecretsInErrorsOrLogs(t *testing.T) {
	e := newEnv(t)
	e.ts.echo = true // error descriptions echo the request, tokens included
	rt := e.ts.issue()
	s := e.mustSource(t, rt)
	var seen []string // every token value the source handled
	var errs []error
	seen = append(seen, rt, e.ts.clientSecret)
	a := mustToken(t, s)
	seen = append(seen, a)
	e.ts.setStatus(500)
	_, err := s.Refresh(context.Background(), a)
	errs = append(errs, err)
	e.ts.setStatus(0)
	b, err := s.Refresh(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	seen = append(seen, b)
	e.ts.revoke()
	_, err = s.Refresh(context.Background(), b)
	errs = append(errs, err)
	stored, _ := e.rdb.HGet(context.Background(), keys.For(zdoauth.DefaultAccount).OAuthToken(), "refresh").Result()
	seen = append(seen, stored)
	st, _ := s.State(context.Background())

	var texts []string
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		texts = append(texts, err.Error(), zendesk.AsError(err).Message)
		if ze := zendesk.AsError(err); ze.Err != nil {
			texts = append(texts, ze.Err.Error())
		}
	}
	texts = append(texts, e.logs.String(), st.LastRefreshError)
	for _, txt := range texts {
		for _, sec := range seen {
			if sec != "" && strings.Contains(txt, sec) {
				t.Fatalf("a token or secret leaked into %q", txt)
			}
		}
	}
	if !strings.Contains(e.logs.String(), "token refresh failed") || !strings.Contains(e.logs.String(), "access token refreshed") {
		t.Fatalf("logs lack the refresh events: %s", e.logs.String())
	}
}

func TestState(t *testing.T) {
	e := newEnv(t)
	s := e.mustSource(t, e.ts.issue())
	st, err := s.State(context.Background())
	if err != nil || st.AuthMode != zdoauth.AuthMode || st.HasAccessToken || !st.LastRefreshAt.IsZero() {
		t.Fatalf("State before use = %+v, %v", st, err)
	}
	mustToken(t, s)
	st, err = s.State(context.Background())
	if b, _ := json.Marshal(st); !strings.Contains(string(b), `"auth_mode":"oauth-refresh"`) || !strings.Contains(string(b), `"access_token_expires_at"`) {
		t.Fatalf("State JSON = %s", b)
	}
	wantExpiry := e.clock.Now().Add(time.Hour)
	if err != nil || !st.HasAccessToken || st.LastRefreshAt.IsZero() || st.Unauthorized ||
		st.AccessTokenExpiresAt.Sub(wantExpiry).Abs() > time.Second {
		t.Fatalf("State after refresh = %+v, %v; want expiry near %s", st, err, wantExpiry)
	}
}

func TestClientRefreshesOnce(t *testing.T) {
	e := newEnv(t)
	s := e.mustSource(t, e.ts.issue())
	c, err := zendesk.New(zendesk.Config{BaseURL: e.ts.URL(), TokenSource: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Me(ctx); err != nil {
		t.Fatalf("Me: %v", err)
	}
	e.ts.expireAccess() // Zendesk drops the access token before its announced expiry
	if _, err := c.Me(ctx); err != nil {
		t.Fatalf("Me after the access token was dropped: %v (want refresh and retry)", err)
	}
	if n := e.ts.count(); n != 2 {
		t.Fatalf("token requests = %d, want 2", n)
	}
	e.ts.revoke()
	_, err = c.Me(ctx)
	if ze := zendesk.AsError(err); ze == nil || ze.Kind != zendesk.KindUnauthorized {
		t.Fatalf("Me after revocation = %v, want KindUnauthorized", err)
	}
}

func TestTokenRequestEncoding(t *testing.T) {
	tests := []struct {
		name string
		form bool
		want string
	}{
		{"JSONByDefault", false, "application/json"},
		{"FormWhenAsked", true, "application/x-www-form-urlencoded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			s := e.mustSource(t, e.ts.issue(), func(c *zdoauth.Config) { c.FormEncoded = tt.form })
			mustToken(t, s) // the server checks grant_type, client_id, client_secret, refresh_token
			e.ts.mu.Lock()
			defer e.ts.mu.Unlock()
			if len(e.ts.contentTypes) != 1 || !strings.HasPrefix(e.ts.contentTypes[0], tt.want) {
				t.Fatalf("token request content types = %q, want one %s", e.ts.contentTypes, tt.want)
			}
		})
	}
}
