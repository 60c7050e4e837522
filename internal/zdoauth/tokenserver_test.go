package zdoauth_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// tokenServer is a small Zendesk stand-in: POST /oauth/tokens with the
// refresh grant (rotating refresh tokens, deleting the previous access and
// refresh token as Zendesk does), expiring access tokens, revocation, and
// GET /api/v2/users/me behind bearer auth.
type tokenServer struct {
	t   testing.TB
	srv *httptest.Server

	clientID, clientSecret string
	ttl                    time.Duration
	now                    func() time.Time

	mu           sync.Mutex
	refresh      map[string]string    // valid refresh token -> its access token
	access       map[string]time.Time // valid access token -> expiry
	requests     int                  // POST /oauth/tokens received
	gate         chan struct{}        // when set, token requests wait for it to close
	status       int                  // when set, token requests answer this status
	echo         bool                 // error descriptions echo the request body
	contentTypes []string             // of every token request
}

func newTokenServer(t testing.TB, now func() time.Time) *tokenServer {
	t.Helper()
	ts := &tokenServer{t: t, clientID: "deskrelay", clientSecret: "client-secret-123456",
		ttl: time.Hour, now: now, refresh: map[string]string{}, access: map[string]time.Time{}}
	ts.srv = httptest.NewServer(ts)
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *tokenServer) URL() string { return ts.srv.URL }

func randToken(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// issue creates a new refresh token (as the authorization code grant would).
func (ts *tokenServer) issue() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	rt := randToken("rt_")
	ts.refresh[rt] = ""
	return rt
}

// revoke invalidates every token.
func (ts *tokenServer) revoke() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.refresh = map[string]string{}
	ts.access = map[string]time.Time{}
}

// expireAccess invalidates the current access tokens only (as if they expired
// on Zendesk's side earlier than announced).
func (ts *tokenServer) expireAccess() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.access = map[string]time.Time{}
}

func (ts *tokenServer) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.requests
}

func (ts *tokenServer) setStatus(s int) { ts.mu.Lock(); ts.status = s; ts.mu.Unlock() }

func (ts *tokenServer) setGate(g chan struct{}) { ts.mu.Lock(); ts.gate = g; ts.mu.Unlock() }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (ts *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/oauth/tokens":
		ts.token(w, r)
	case r.Method == http.MethodGet && strings.TrimSuffix(r.URL.Path, ".json") == "/api/v2/users/me":
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		ts.mu.Lock()
		exp, valid := ts.access[tok]
		valid = ok && valid && ts.now().Before(exp)
		ts.mu.Unlock()
		if !valid {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Couldn't authenticate you"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"user": map[string]any{"id": 7, "role": "admin"}})
	default:
		ts.t.Errorf("token server: unexpected %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
	}
}

func (ts *tokenServer) token(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	ts.requests++
	gate, status, echo := ts.gate, ts.status, ts.echo
	ts.mu.Unlock()
	if gate != nil {
		<-gate
	}
	ts.mu.Lock()
	ts.contentTypes = append(ts.contentTypes, r.Header.Get("Content-Type"))
	ts.mu.Unlock()
	f := url.Values{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var in map[string]string
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
			return
		}
		for k, v := range in {
			f.Set(k, v)
		}
	} else {
		if err := r.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
			return
		}
		f = r.PostForm
	}
	if status != 0 {
		body := map[string]any{"error": "server_error", "error_description": "try later"}
		if echo {
			body["error_description"] = "could not handle " + f.Encode()
		}
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
		}
		writeJSON(w, status, body)
		return
	}
	if f.Get("grant_type") != "refresh_token" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type"})
		return
	}
	if f.Get("client_id") != ts.clientID || f.Get("client_secret") != ts.clientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client",
			"error_description": "Client authentication failed"})
		return
	}
	rt := f.Get("refresh_token")
	ts.mu.Lock()
	defer ts.mu.Unlock()
	oldAccess, ok := ts.refresh[rt]
	if !ok {
		desc := "The provided authorization grant is invalid, expired, or revoked"
		if echo {
			desc += ": " + rt
		}
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": desc})
		return
	}
	delete(ts.refresh, rt)
	delete(ts.access, oldAccess)
	at, nrt := randToken("at_"), randToken("rt_")
	ts.refresh[nrt] = at
	ts.access[at] = ts.now().Add(ts.ttl)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at, "token_type": "bearer", "refresh_token": nrt, "scope": "read write",
		"expires_in": int(ts.ttl / time.Second), "refresh_token_expires_in": 7776000,
	})
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
