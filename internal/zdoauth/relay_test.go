package zdoauth_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/internal/zdoauth"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// relayEnv is one relay whose Zendesk client authenticates with a Source,
// against the fake Zendesk, on a real Redis.
type relayEnv struct {
	db    *redistest.DB
	fake  *zendesktest.Server
	relay *relay.Relay
	logs  *testutil.SyncBuffer
}

func newRelayEnv(t *testing.T) *relayEnv {
	t.Helper()
	e := &relayEnv{db: redistest.New(t), logs: &testutil.SyncBuffer{}}
	e.fake = zendesktest.NewServer(t, zendesktest.Config{Logf: func(string, ...any) {}}) // Zendesk's real limits
	e.fake.OAuthClient(fakeClientID, fakeClientSecret)
	src := e.source(t, e.fake.IssueRefreshToken())
	lim := budget.New(e.db.Client, budget.Config{}) // production's shares of what the fake reports
	zd, err := zendesk.New(zendesk.Config{BaseURL: e.fake.URL(), TokenSource: src, Timeout: 5 * time.Second, OnResponse: lim.Observe})
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(relay.Config{
		TurnPoll: 300 * time.Millisecond, GateProbeInterval: 200 * time.Millisecond, GateParkTime: 20 * time.Second,
		LockTTL: 3 * time.Second, AttemptTimeout: 30 * time.Second,
	}, relay.Deps{Redis: e.db.Client, Asynq: e.db.AsynqOpt(), Zendesk: zd, Limiter: lim, Log: zerolog.New(e.logs),
		Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	srv := queues.NewServer(e.db.AsynqOpt(), queues.ServerConfig{
		Concurrency:     8,
		Policy:          queues.Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second},
		ShutdownTimeout: 5 * time.Second,
		PollInterval:    100 * time.Millisecond,
	}, zerolog.New(e.logs))
	mux := asynq.NewServeMux()
	r.Register(mux)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	e.relay = r
	return e
}

// source is the Source of a replica configured with refreshToken.
func (e *relayEnv) source(t *testing.T, refreshToken string) *zdoauth.Source {
	t.Helper()
	s, err := zdoauth.New(zdoauth.Config{BaseURL: e.fake.URL(), ClientID: fakeClientID, ClientSecret: fakeClientSecret,
		RefreshToken: refreshToken, PollInterval: 5 * time.Millisecond}, e.db.Client, zerolog.New(e.logs))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *relayEnv) tokenRequests() int { return e.fake.CountRequests(http.MethodPost, "/oauth/tokens") }

func (e *relayEnv) count401() int {
	n := 0
	for _, r := range e.fake.Requests() {
		if r.Status == http.StatusUnauthorized {
			n++
		}
	}
	return n
}

func relayMessage(conv string, i int) relay.Message {
	n := int64(i)
	return relay.Message{
		ID: fmt.Sprintf("%s-m%02d", conv, i), ConversationID: conv, Sequence: &n,
		Author: relay.Author{Name: "Ann Lee", Email: "ann+" + conv + "@example.com"},
		Body:   fmt.Sprintf("%s message %02d", conv, i),
	}
}

func (e *relayEnv) enqueue(t *testing.T, ms ...relay.Message) {
	t.Helper()
	for _, m := range ms {
		if _, created, err := e.relay.Enqueue(context.Background(), m); err != nil || !created {
			t.Fatalf("Enqueue %s: created=%v err=%v", m.ID, created, err)
		}
	}
}

// count returns how many of ms have the status (and reason, if not "").
func (e *relayEnv) count(ms []relay.Message, status, reason string) int {
	n := 0
	for _, m := range ms {
		st, err := e.relay.Status(context.Background(), m.ID)
		if err == nil && st.Status == status && (reason == "" || st.Reason == reason) {
			n++
		}
	}
	return n
}

// checkExactlyOnce asserts one ticket per conversation holding every
// message's body exactly once, in order.
func (e *relayEnv) checkExactlyOnce(t *testing.T, ms []relay.Message) {
	t.Helper()
	want := map[string][]string{}
	for _, m := range ms {
		want[m.ConversationID] = append(want[m.ConversationID], m.Body)
	}
	tickets := e.fake.Tickets()
	sort.Slice(tickets, func(i, j int) bool { return tickets[i].ID < tickets[j].ID })
	got, perConv := map[string][]string{}, map[string]int{}
	for _, tk := range tickets {
		perConv[tk.ExternalID]++
		for _, c := range e.fake.Comments(tk.ID) {
			got[tk.ExternalID] = append(got[tk.ExternalID], c.Body)
		}
	}
	for conv, bodies := range want {
		if perConv[conv] != 1 || !slices.Equal(got[conv], bodies) {
			t.Errorf("conversation %s: %d tickets, comments %q; want 1 ticket with %q", conv, perConv[conv], got[conv], bodies)
		}
	}
}

func TestRelayWithOAuth(t *testing.T) {
	t.Run("ExpiryMidBurstNoFailureNoDuplicate", func(t *testing.T) {
		e := newRelayEnv(t)
		var ms []relay.Message
		for c := range 4 {
			for i := 1; i <= 8; i++ {
				ms = append(ms, relayMessage(fmt.Sprintf("exp%02d", c), i))
			}
		}
		e.enqueue(t, ms...)
		testutil.WaitFor(t, 30*time.Second, func() bool { return e.count(ms, "delivered", "") >= 4 }, "the first deliveries")
		before := e.tokenRequests()
		e.fake.ExpireAccessTokens() // mid-burst: every request with the old token now gets 401
		testutil.WaitFor(t, 60*time.Second, func() bool { return e.count(ms, "delivered", "") == len(ms) }, "every message delivered")
		if n := e.count(ms, "failed", ""); n != 0 {
			t.Fatalf("%d messages failed", n)
		}
		e.checkExactlyOnce(t, ms)
		if got := e.tokenRequests() - before; got != 1 {
			t.Fatalf("token requests after the expiry = %d, want exactly 1", got)
		}
		if e.count401() == 0 {
			t.Fatal("no request met the expired token: the expiry was not mid-burst")
		}
	})

	t.Run("RevokedFailsUnauthorizedThenReplaysWithNewToken", func(t *testing.T) {
		e := newRelayEnv(t)
		first := relayMessage("rev00", 1)
		e.enqueue(t, first)
		testutil.WaitFor(t, 30*time.Second, func() bool { return e.count([]relay.Message{first}, "delivered", "") == 1 }, "the first delivery")

		e.fake.RevokeRefreshTokens()
		e.fake.ExpireAccessTokens()
		before := e.tokenRequests()
		var later []relay.Message
		for i := 2; i <= 4; i++ {
			later = append(later, relayMessage("rev00", i))
		}
		for i := 1; i <= 3; i++ {
			later = append(later, relayMessage("rev01", i))
		}
		e.enqueue(t, later...)
		testutil.WaitFor(t, 60*time.Second, func() bool {
			return e.count(later, "failed", relay.ReasonUnauthorized) == len(later)
		}, "every later message failed as unauthorized")
		if got := e.tokenRequests() - before; got != 1 {
			t.Fatalf("token requests after the revocation = %d, want 1 (a rejected refresh token is not tried again)", got)
		}

		// The operator configures a new refresh token; a replica restarts with it.
		newRT := e.fake.IssueRefreshToken()
		if err := e.source(t, newRT).Init(context.Background()); err != nil {
			t.Fatal(err)
		}
		sum, err := e.relay.Replay(context.Background(), relay.ReplayOptions{Reason: relay.ReasonUnauthorized})
		if err != nil || sum.Replayed != len(later) {
			t.Fatalf("Replay = %+v, %v; want %d replayed", sum, err, len(later))
		}
		all := append([]relay.Message{first}, later...)
		testutil.WaitFor(t, 60*time.Second, func() bool {
			return e.count(all, "delivered", "") == len(all)
		}, "every message delivered after the replay")
		e.checkExactlyOnce(t, all)

		// No token or secret in the relay's or the source's logs, nor in a
		// message's last error.
		h, err := e.db.Client.HGetAll(context.Background(), keys.For(zdoauth.DefaultAccount).OAuthToken()).Result()
		if err != nil {
			t.Fatal(err)
		}
		secrets := []string{newRT, fakeClientSecret, h["access"], h["refresh"]}
		texts := []string{e.logs.String()}
		for _, m := range all {
			st, _ := e.relay.Status(context.Background(), m.ID)
			texts = append(texts, st.LastError)
		}
		for _, txt := range texts {
			for _, sec := range secrets {
				if sec != "" && strings.Contains(txt, sec) {
					t.Fatal("a token or secret leaked into the logs or a message's last error")
				}
			}
		}
	})
}
