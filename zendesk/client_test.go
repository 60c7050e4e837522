package zendesk

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	ts := &fakeTokens{token: "a"}
	tests := []struct {
		name     string
		cfg      Config
		wantErr  string // prefix naming the setting; "" for success
		wantBase string
	}{
		{name: "SubdomainBuildsURL", cfg: Config{Subdomain: "acme", OAuthToken: "t"}, wantBase: "https://acme.zendesk.com"},
		{name: "URLOverridesSubdomain", cfg: Config{Subdomain: "acme", BaseURL: "http://127.0.0.1:9/", OAuthToken: "t"}, wantBase: "http://127.0.0.1:9"},
		{name: "URLWithPrefixIsKept", cfg: Config{BaseURL: "https://proxy.example/zd", TokenSource: ts}, wantBase: "https://proxy.example/zd"},
		{name: "NoAccountIsRejected", cfg: Config{OAuthToken: "t"}, wantErr: "zendesk: Subdomain:"},
		{name: "FullHostAsSubdomainIsRejected", cfg: Config{Subdomain: "acme.zendesk.com", OAuthToken: "t"}, wantErr: "zendesk: Subdomain:"},
		{name: "BadSubdomainIsRejected", cfg: Config{Subdomain: "ac_me", OAuthToken: "t"}, wantErr: "zendesk: Subdomain:"},
		{name: "URLWithoutSchemeIsRejected", cfg: Config{BaseURL: "acme.zendesk.com", OAuthToken: "t"}, wantErr: "zendesk: BaseURL:"},
		{name: "URLWithCredentialsIsRejected", cfg: Config{BaseURL: "https://u:pw-secret@acme.zendesk.com", OAuthToken: "t"}, wantErr: "zendesk: BaseURL:"},
		{name: "URLWithAPIPathIsRejected", cfg: Config{BaseURL: "https://acme.zendesk.com/api/v2", OAuthToken: "t"}, wantErr: "zendesk: BaseURL:"},
		{name: "NoAuthIsRejected", cfg: Config{Subdomain: "acme"}, wantErr: "zendesk: APIToken:"},
		{name: "EmailWithoutTokenIsRejected", cfg: Config{Subdomain: "acme", Email: testEmail}, wantErr: "zendesk: APIToken:"},
		{name: "TokenWithoutEmailIsRejected", cfg: Config{Subdomain: "acme", APIToken: testToken}, wantErr: "zendesk: Email:"},
		{name: "BadEmailIsRejected", cfg: Config{Subdomain: "acme", Email: "ann", APIToken: testToken}, wantErr: "zendesk: Email:"},
		{name: "TwoAuthsAreRejected", cfg: Config{Subdomain: "acme", Email: testEmail, APIToken: testToken, OAuthToken: "t"}, wantErr: "zendesk: OAuthToken:"},
		{name: "OAuthAndTokenSourceAreRejected", cfg: Config{Subdomain: "acme", OAuthToken: "t", TokenSource: ts}, wantErr: "zendesk: OAuthToken:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("New err = %v, want prefix %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "pw-secret") || strings.Contains(err.Error(), testToken) {
					t.Errorf("error %q holds a credential", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if c.BaseURL() != tt.wantBase {
				t.Errorf("BaseURL = %q, want %q", c.BaseURL(), tt.wantBase)
			}
		})
	}
}

// TestRequestBodies pins the JSON bodies deskrelay sends, method and path.
func TestRequestBodies(t *testing.T) {
	tests := []struct {
		name       string
		call       func(ctx context.Context, c *Client) error
		wantMethod string
		wantPath   string
		answer     int
	}{
		{name: "CreateTicket", wantMethod: "POST", wantPath: "/api/v2/tickets", answer: 201,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.CreateTicket(ctx, NewTicket{
					Subject:      "The app crashes on Save",
					Comment:      CommentInput{Body: "The app crashes when <Save> & Quit", Public: true},
					Requester:    &Requester{Name: "Ann Lee", Email: "ann@example.com"},
					ExternalID:   "conv_42",
					Tags:         []string{"deskrelay", "ios"},
					CustomFields: []CustomField{{ID: 360001, Value: "gold"}},
					Metadata:     map[string]any{"deskrelay_message_id": "msg_01"},
				}, "msg_01")
				return err
			}},
		{name: "CreateFollowUp", wantMethod: "POST", wantPath: "/api/v2/tickets", answer: 201,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.CreateTicket(ctx, NewTicket{
					Subject:             "Re: The app crashes on Save",
					Comment:             CommentInput{Body: "Still broken", Public: true},
					RequesterID:         77,
					ExternalID:          "conv_42",
					Tags:                []string{"deskrelay"},
					ViaFollowupSourceID: 1001,
					Metadata:            map[string]any{"deskrelay_message_id": "msg_05"},
				}, "msg_05")
				return err
			}},
		{name: "AddCommentWithMetadata", wantMethod: "PUT", wantPath: "/api/v2/tickets/1001", answer: 200,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.AddComment(ctx, 1001, CommentInput{Body: "Any news?", Public: true, AuthorID: 77},
					map[string]any{"deskrelay_message_id": "msg_02"})
				return err
			}},
		{name: "ActivateWebhook", wantMethod: "PATCH", wantPath: "/api/v2/webhooks/01GK-abc", answer: 204,
			call: func(ctx context.Context, c *Client) error { return c.ActivateWebhook(ctx, "01GK-abc") }},
		{name: "ActivateTarget", wantMethod: "PUT", wantPath: "/api/v2/targets/360", answer: 200,
			call: func(ctx context.Context, c *Client) error { return c.ActivateTarget(ctx, 360) }},
		{name: "CreateOrUpdateUser", wantMethod: "POST", wantPath: "/api/v2/users/create_or_update", answer: 200,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.CreateOrUpdateUser(ctx, UserInput{Name: "Ann Lee", Email: "ann@example.com", ExternalID: "user_7", Role: "end-user"})
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rec := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
				if tt.answer == 204 {
					w.WriteHeader(204)
					return
				}
				writeJSON(w, tt.answer, map[string]any{"ticket": map[string]any{"id": 1001}, "user": map[string]any{"id": 77}, "target": map[string]any{"id": 360}})
			})
			c := mustClient(t, srv.URL, nil)
			if err := tt.call(t.Context(), c); err != nil {
				t.Fatalf("call: %v", err)
			}
			reqs := rec.all()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.wantMethod || r.Path != tt.wantPath {
				t.Errorf("request %s %s, want %s %s", r.Method, r.Path, tt.wantMethod, tt.wantPath)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if ua := r.Header.Get("User-Agent"); ua != "deskrelay" {
				t.Errorf("User-Agent = %q, want deskrelay", ua)
			}
			mustGolden(t, strings.ToLower(tt.name)+".json", r.Body)
		})
	}
}

func TestCreateTicketIdempotency(t *testing.T) {
	tests := []struct {
		name    string
		lookup  string
		wantHit bool
	}{
		{name: "HitIsReported", lookup: "hit", wantHit: true},
		{name: "MissIsNotAHit", lookup: "miss"},
		{name: "NoHeaderIsNotAHit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rec := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
				if tt.lookup != "" {
					w.Header().Set("x-idempotency-lookup", tt.lookup)
				}
				writeJSON(w, 201, map[string]any{
					"ticket": map[string]any{"id": 1001, "status": "new", "external_id": "conv_42"},
					"audit":  map[string]any{"id": 5, "events": []any{map[string]any{"id": 555, "type": "Comment", "body": "x"}}},
				})
			})
			c := mustClient(t, srv.URL, nil)
			w, err := c.CreateTicket(t.Context(), NewTicket{Comment: CommentInput{Body: "x", Public: true}}, "msg_01")
			if err != nil {
				t.Fatal(err)
			}
			if w.IdempotencyHit != tt.wantHit || w.Ticket.ID != 1001 || w.CommentID() != 555 {
				t.Errorf("got hit=%v ticket=%d comment=%d, want hit=%v 1001 555", w.IdempotencyHit, w.Ticket.ID, w.CommentID(), tt.wantHit)
			}
			if got := rec.all()[0].Header.Get("Idempotency-Key"); got != "msg_01" {
				t.Errorf("Idempotency-Key = %q, want msg_01", got)
			}
		})
	}
}

// fakeTokens is a TokenSource that hands out token and, on Refresh, fresh.
type fakeTokens struct {
	token, fresh string
	refreshes    atomic.Int32
	refreshErr   error
}

func (f *fakeTokens) Token(context.Context) (string, error) { return f.token, nil }

func (f *fakeTokens) Refresh(_ context.Context, stale string) (string, error) {
	f.refreshes.Add(1)
	if f.refreshErr != nil {
		return "", f.refreshErr
	}
	if stale != f.token {
		return "", fmt.Errorf("refresh called with the wrong stale token")
	}
	return f.fresh, nil
}

func TestAuth(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(testEmail+"/token:"+testToken))
	tests := []struct {
		name          string
		cfg           func(*Config)
		accept        string // the Authorization header the server accepts
		wantErrKind   Kind
		wantRequests  int
		wantRefreshes int32
		tokens        *fakeTokens
	}{
		{name: "APITokenIsBasic", accept: basic, wantRequests: 1},
		{name: "OAuthTokenIsBearer", accept: "Bearer oauth-SECRET-1",
			cfg: func(c *Config) { c.Email, c.APIToken, c.OAuthToken = "", "", "oauth-SECRET-1" }, wantRequests: 1},
		{name: "TokenSourceIsBearer", accept: "Bearer ts-SECRET-old", tokens: &fakeTokens{token: "ts-SECRET-old", fresh: "ts-SECRET-new"},
			wantRequests: 1},
		{name: "TokenSource401RefreshesOnceAndRetries", accept: "Bearer ts-SECRET-new", tokens: &fakeTokens{token: "ts-SECRET-old", fresh: "ts-SECRET-new"},
			wantRequests: 2, wantRefreshes: 1},
		{name: "TokenSourceSecond401IsUnauthorized", accept: "nothing", tokens: &fakeTokens{token: "ts-SECRET-old", fresh: "ts-SECRET-new"},
			wantRequests: 2, wantRefreshes: 1, wantErrKind: KindUnauthorized},
		{name: "TokenSourceRefreshRejectedKeepsItsKind", accept: "nothing",
			tokens:       &fakeTokens{token: "ts-SECRET-old", refreshErr: fmt.Errorf("invalid_grant: %w", &Error{Op: "refresh", Kind: KindUnauthorized, Status: 400})},
			wantRequests: 1, wantRefreshes: 1, wantErrKind: KindUnauthorized},
		{name: "TokenSourceRefreshFailingIsTemporary", accept: "nothing",
			tokens:       &fakeTokens{token: "ts-SECRET-old", refreshErr: errors.New("dial tcp: connection refused")},
			wantRequests: 1, wantRefreshes: 1, wantErrKind: KindTemporary},
		{name: "StaticToken401IsUnauthorizedWithoutRetry", accept: "nothing", wantRequests: 1, wantErrKind: KindUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rec := mustServer(t, func(w http.ResponseWriter, r *http.Request, got recorded) {
				if r.Header.Get("Authorization") != tt.accept {
					writeJSON(w, 401, map[string]any{"error": "Couldn't authenticate you"})
					return
				}
				writeJSON(w, 200, map[string]any{"user": map[string]any{"id": 9, "role": "admin"}})
			})
			c := mustClient(t, srv.URL, func(c *Config) {
				if tt.cfg != nil {
					tt.cfg(c)
				}
				if tt.tokens != nil {
					c.Email, c.APIToken, c.TokenSource = "", "", tt.tokens
				}
			})
			u, err := c.Me(t.Context())
			if tt.wantErrKind != 0 {
				if KindOf(err) != tt.wantErrKind {
					t.Fatalf("err = %v, want kind %s", err, tt.wantErrKind)
				}
			} else if err != nil || u.ID == nil || *u.ID != 9 || u.Role != "admin" {
				t.Fatalf("Me = %+v, %v; want user 9", u, err)
			}
			if n := len(rec.all()); n != tt.wantRequests {
				t.Errorf("%d requests, want %d", n, tt.wantRequests)
			}
			if tt.tokens != nil && tt.tokens.refreshes.Load() != tt.wantRefreshes {
				t.Errorf("%d refreshes, want %d", tt.tokens.refreshes.Load(), tt.wantRefreshes)
			}
		})
	}
}

// TestErrorsHoldNoSecret makes the server echo every credential it got back
// in its error body and headers, and checks no error rendering shows one.
func TestErrorsHoldNoSecret(t *testing.T) {
	srv, _ := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		auth := r.Header.Get("Authorization")
		raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(auth, "Basic "))
		w.Header().Set("X-Request-Id", "echo")
		writeJSON(w, 403, map[string]any{
			"error":       "Forbidden " + auth,
			"description": "you sent " + auth + " i.e. " + string(raw),
			"details":     map[string]any{"auth": []any{map[string]any{"description": string(raw)}}},
		})
	})
	secrets := []string{testToken, testEmail + "/token", base64.StdEncoding.EncodeToString([]byte(testEmail + "/token:" + testToken)), "oauth-SECRET-xyz"}
	for _, cfg := range []func(*Config){
		nil,
		func(c *Config) { c.Email, c.APIToken, c.OAuthToken = "", "", "oauth-SECRET-xyz" },
	} {
		c := mustClient(t, srv.URL, cfg)
		_, err := c.AddComment(t.Context(), 1, CommentInput{Body: "x", Public: true}, nil)
		if KindOf(err) != KindUnauthorized {
			t.Fatalf("err = %v, want unauthorized", err)
		}
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", AsError(err)), string(AsError(err).Details)} {
			for _, sec := range secrets {
				if strings.Contains(s, sec) {
					t.Errorf("error rendering holds a secret: %s", s)
				}
			}
		}
	}
	// A transport failure names neither the URL's credentials nor tokens.
	c := mustClient(t, refusedURL(t), nil)
	_, err := c.GetTicket(t.Context(), 1)
	if err == nil || strings.Contains(fmt.Sprintf("%+v", err), testToken) {
		t.Errorf("transport error = %+v", err)
	}
}

func TestTimeoutIsPerRequest(t *testing.T) {
	srv, _ := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	c := mustClient(t, srv.URL, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	start := time.Now()
	_, err := c.GetTicket(t.Context(), 1)
	if KindOf(err) != KindTemporary || !strings.Contains(err.Error(), "timeout after 50ms") {
		t.Fatalf("err = %v, want temporary timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s, want about 50ms", d)
	}
}
