package relay_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// An upstream (a proxy in front of Zendesk) that echoes the Authorization
// header in X-Request-Id and in its error text gets the API token neither
// into the log nor into GET /v1/messages/{id}.
func TestEchoedCredentialsNeverStored(t *testing.T) {
	fake := zendesktest.NewServer(t, zendesktest.Config{RateLimit: 100000, UpdateTicketLimit: 100000, Logf: func(string, ...any) {}})
	target, _ := url.Parse(fake.URL())
	rp := httputil.NewSingleHostReverseProxy(target)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if r.Method == http.MethodPost && r.URL.Path == "/api/v2/tickets" {
			w.Header().Set("X-Request-Id", auth)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"InvalidHeader","description":"rejected ` + auth + `"}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(echo.Close)
	db := redistest.New(t)
	zd, err := zendesk.New(zendesk.Config{BaseURL: echo.URL, Email: fake.Email(), APIToken: fake.APIToken(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	r, err := relay.New(fastConfig(relay.Config{}), relay.Deps{Redis: db.Client, Asynq: db.AsynqOpt(), Zendesk: zd, Log: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	startWorkers(t, db.AsynqOpt(), r, 2, time.Second)
	m := msg("echo", 1)
	mustEnqueue(t, r, m)
	waitStatus(t, r, []string{m.ID}, relay.StateFailed, 20*time.Second)

	srv := intakeServer(t, r)
	a := do(t, http.MethodGet, srv.URL+"/v1/messages/"+m.ID, "", ingestToken, "")
	if a.status != 200 || a.body["last_error"] == "" {
		t.Fatalf("get = %d %s, want 200 with a last_error", a.status, a.raw)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(fake.Email() + "/token:" + fake.APIToken()))
	for _, secret := range []string{fake.APIToken(), basic} {
		if strings.Contains(a.raw, secret[:8]) {
			t.Errorf("GET /v1/messages/{id} shows a credential: %s", a.raw)
		}
		if strings.Contains(logs.String(), secret[:8]) {
			t.Errorf("the log shows a credential: %s", logs.String())
		}
	}
}
