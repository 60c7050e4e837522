//go:build upgradefixture

package main

// The generator of the upgrade fixture (testdata/upgrade). It runs the real
// flows of the release it is checked out at against a private redis-server
// and a fake Zendesk, stops deskrelay without draining, and saves Redis:
//
//	go test -tags upgradefixture -run TestGenerateUpgradeFixture -count=1 -v .
//
// It may use package main's internals (serve, tuning) because it is pinned
// to the release that made the fixture; the upgrade test may not.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/logging"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// fixtureSettings are the made-up settings the fixture is made with (the
// test uses them again, plus fresh addresses).
func fixtureSettings() map[string]string {
	return map[string]string{
		"DESKRELAY_ZENDESK_OAUTH_CLIENT_ID":     "deskrelay-upgrade-fixture",
		"DESKRELAY_ZENDESK_OAUTH_CLIENT_SECRET": "upgrade-client-secret-FAKE",
		"DESKRELAY_INGEST_TOKEN":                "upgrade-ingest-token-FAKE",
		"DESKRELAY_WEBHOOK_SECRET":              "dXBncmFkZS13ZWJob29rLXNlY3JldC1GQUtF",
		"DESKRELAY_SINK_SECRET":                 "whsec_dXBncmFkZS1zaW5rLXNlY3JldC1GQUtF",
		"DESKRELAY_ADMIN_USER":                  "admin",
		"DESKRELAY_ADMIN_PASSWORD":              "upgrade-admin-password-FAKE",
		"DESKRELAY_RECONCILE_INTERVAL":          "1h",
		"DESKRELAY_SHUTDOWN_TIMEOUT":            "2s",
	}
}

// fixtureSink is the platform's sink: it records what it accepts, and
// answers 503 while down.
type fixtureSink struct {
	mu       sync.Mutex
	down     bool
	accepted []string // webhook-id of each delivery answered 200
	refused  int
}

func (s *fixtureSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.refused++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	s.accepted = append(s.accepted, r.Header.Get("webhook-id"))
	w.WriteHeader(http.StatusOK)
}

func (s *fixtureSink) setDown(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }

func (s *fixtureSink) snapshot() ([]string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.accepted...), s.refused
}

// hookRecorder stands between the fake Zendesk's webhook and deskrelay and
// keeps every body it passes on.
type hookRecorder struct {
	mu     sync.Mutex
	target *url.URL
	bodies []string
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.bodies = append(h.bodies, string(body))
	target := h.target
	h.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
}

func (h *hookRecorder) last() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.bodies) == 0 {
		return ""
	}
	return h.bodies[len(h.bodies)-1]
}

type fixtureRig struct {
	t      *testing.T
	redis  *redistest.Server
	zd     *zendesktest.Server
	sink   *fixtureSink
	hooks  *hookRecorder
	base   string
	bearer string
	man    upgradeManifest
	stop   func()
}

func TestGenerateUpgradeFixture(t *testing.T) {
	g := startFixtureRig(t)
	g.deliverSome()
	g.ledgerAndPendingEvent()
	g.failSome()
	g.queueDuringOutage()
	g.stop()
	g.saveFixture()
}

func startFixtureRig(t *testing.T) *fixtureRig {
	g := &fixtureRig{t: t, redis: redistest.StartServer(t, redistest.ServerOptions{}), sink: &fixtureSink{}, hooks: &hookRecorder{}}
	// The access tokens outlive any test run of the fixture: the upgrade test
	// checks that the stored one is used.
	g.zd = zendesktest.NewServer(t, zendesktest.Config{AccessTokenTTL: 10 * 365 * 24 * time.Hour})
	set := fixtureSettings()
	g.zd.OAuthClient(set["DESKRELAY_ZENDESK_OAUTH_CLIENT_ID"], set["DESKRELAY_ZENDESK_OAUTH_CLIENT_SECRET"])
	set["DESKRELAY_ZENDESK_OAUTH_REFRESH_TOKEN"] = g.zd.IssueRefreshToken()
	sink := httptest.NewServer(g.sink)
	t.Cleanup(sink.Close)
	hooks := httptest.NewServer(g.hooks)
	t.Cleanup(hooks.Close)
	webhookID := g.zd.AddWebhook(hooks.URL+"/v1/zendesk/webhook", set["DESKRELAY_WEBHOOK_SECRET"], zendesktest.EventCommentAdded)

	env := map[string]string{
		"DESKRELAY_REDIS_URL":          g.redis.URL(),
		"DESKRELAY_ZENDESK_URL":        g.zd.URL(),
		"DESKRELAY_SINK_URL":           sink.URL + "/events",
		"DESKRELAY_SPOOL_DIR":          t.TempDir(),
		"DESKRELAY_ZENDESK_WEBHOOK_ID": webhookID,
		"DESKRELAY_PUBLIC_URL":         hooks.URL,
		"DESKRELAY_LOG_LEVEL":          "debug",
	}
	for k, v := range set {
		env[k] = v
	}
	v := bindSettings(newFlagSet(&environment{getenv: envFrom(env), stdout: io.Discard, stderr: io.Discard}, "serve", "serve"), envFrom(env))()
	cfg, err := parseConfig(v, needs{zendesk: true, ingest: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.base = "http://" + ln.Addr().String()
	g.hooks.target, _ = url.Parse(g.base)
	// Reconcile lags ten minutes, so that the checkpoint is well in the past
	// of any later run of the upgrade test.
	cfg.tuning = tuning{listener: ln, pollInterval: 100 * time.Millisecond, gateProbe: 300 * time.Millisecond,
		reconcileLag: 10 * time.Minute, logStart: true}
	logs := &syncBuffer{}
	log, err := logging.New(logs, "json", "debug")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, log) }()
	var once sync.Once
	g.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		g.stop()
		if t.Failed() {
			t.Logf("deskrelay's log:\n%s", logs.String())
		}
	})
	g.bearer = "Bearer " + set["DESKRELAY_INGEST_TOKEN"]
	waitFor(t, 15*time.Second, "readyz", func() bool {
		resp, err := http.Get(g.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	g.man = upgradeManifest{Commit: gitCommit(t), CreatedAt: time.Now().UTC(), Settings: set}
	g.man.OAuth = fixtureOAuth{ClientID: set["DESKRELAY_ZENDESK_OAUTH_CLIENT_ID"], ClientSecret: set["DESKRELAY_ZENDESK_OAUTH_CLIENT_SECRET"],
		ConfiguredRefreshToken: set["DESKRELAY_ZENDESK_OAUTH_REFRESH_TOKEN"]}
	g.man.Reconcile.WebhookID = webhookID
	return g
}

func gitCommit(t *testing.T) string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func msg(id, conv string, seq int, name, body string) fixtureMessage {
	return fixtureMessage{ID: id, ConversationID: conv, Sequence: seq, AuthorName: name,
		AuthorEmail: strings.ToLower(name) + "@example.com", Body: body}
}

func (g *fixtureRig) post(m fixtureMessage) {
	g.t.Helper()
	if code, body := doJSON(g.t, http.MethodPost, g.base+"/v1/messages", g.bearer, m.json()); code != http.StatusAccepted {
		g.t.Fatalf("post %s: %d %v", m.ID, code, body)
	}
}

func (g *fixtureRig) waitStatus(id, status string) map[string]any {
	g.t.Helper()
	var st map[string]any
	waitFor(g.t, 60*time.Second, id+" "+status, func() bool {
		_, st = doJSON(g.t, http.MethodGet, g.base+"/v1/messages/"+id, g.bearer, "")
		return st["status"] == status
	})
	return st
}

// deliverSome: two conversations get tickets and comments (mappings,
// requesters, own-comment marks, delivered message records).
func (g *fixtureRig) deliverSome() {
	ms := []fixtureMessage{
		msg("msg_up_a1", "conv_up_a", 1, "Ann", "The app crashes on Save"),
		msg("msg_up_a2", "conv_up_a", 2, "Ann", "It happens on every document"),
		msg("msg_up_b1", "conv_up_b", 1, "Bob", "Where is my invoice?"),
	}
	for i, m := range ms {
		g.post(m)
		st := g.waitStatus(m.ID, "delivered")
		ms[i].TicketID = int64(st["ticket_id"].(float64))
	}
	g.man.Messages.Delivered = ms
}

// ledgerAndPendingEvent: an agent comment reaches the sink (ledger entry);
// another waits for the sink, which is down.
func (g *fixtureRig) ledgerAndPendingEvent() {
	ta, tb := g.man.Messages.Delivered[0].TicketID, g.man.Messages.Delivered[2].TicketID
	g.zd.AgentComment(ta, "Thanks Ann, we are looking into it", true)
	waitFor(g.t, 30*time.Second, "the agent's comment at the sink", func() bool { acc, _ := g.sink.snapshot(); return len(acc) == 1 })
	acc, _ := g.sink.snapshot()
	g.man.Events.Delivered = []fixtureEvent{{ID: acc[0], TicketID: ta, WebhookBody: g.hooks.last()}}

	g.sink.setDown(true)
	cid := g.zd.AgentComment(tb, "Hi Bob, your invoice is attached", true)
	waitFor(g.t, 30*time.Second, "a refused sink delivery", func() bool { _, refused := g.sink.snapshot(); return refused > 0 })
	g.man.Events.Pending = []fixtureEvent{{ID: "zd:comment:" + strconv.FormatInt(cid, 10), TicketID: tb, WebhookBody: g.hooks.last()}}
}

// failSome: one message fails as unauthorized (Zendesk answers 401 even
// after a token refresh), one as invalid (422).
func (g *fixtureRig) failSome() {
	unauth := msg("msg_unauth_1", "conv_unauth", 1, "Cid", "Can I change my plan?")
	g.zd.FailNext(2, http.StatusUnauthorized, zendesktest.Matching(http.MethodPost, "/api/v2/tickets"))
	g.post(unauth)
	if st := g.waitStatus(unauth.ID, "failed"); st["reason"] != "unauthorized" {
		g.t.Fatalf("%s failed for %v, want unauthorized", unauth.ID, st["reason"])
	}
	invalid := msg("msg_invalid_1", "conv_invalid", 1, "Dee", "This one Zendesk refuses")
	g.zd.FailNext(1, http.StatusUnprocessableEntity, zendesktest.Matching(http.MethodPost, "/api/v2/tickets"))
	g.post(invalid)
	if st := g.waitStatus(invalid.ID, "failed"); st["reason"] != "invalid" {
		g.t.Fatalf("%s failed for %v, want invalid", invalid.ID, st["reason"])
	}
	g.man.Messages.FailedUnauthorized = []fixtureMessage{unauth}
	g.man.Messages.FailedInvalid = []fixtureMessage{invalid}
}

// queueDuringOutage: Zendesk goes down; messages to a mapped conversation
// and to a new one are accepted and wait behind the closed outage gate.
func (g *fixtureRig) queueDuringOutage() {
	ta := g.man.Messages.Delivered[0].TicketID
	g.zd.Down()
	ms := []fixtureMessage{
		msg("msg_up_a3", "conv_up_a", 3, "Ann", "Still crashing after the update"),
		msg("msg_new_1", "conv_new", 1, "Eve", "Hello, first time here"),
		msg("msg_up_a4", "conv_up_a", 4, "Ann", "Any news?"),
		msg("msg_new_2", "conv_new", 2, "Eve", "I forgot: order 4711"),
	}
	ms[0].TicketID, ms[2].TicketID = ta, ta
	for _, m := range ms {
		g.post(m)
	}
	rc := g.redis.Client(g.t)
	waitFor(g.t, 90*time.Second, "the outage gate closed", func() bool {
		return rc.HGet(context.Background(), "deskrelay:gate:outbound", "state").Val() == "closed"
	})
	for _, m := range ms {
		_, st := doJSON(g.t, http.MethodGet, g.base+"/v1/messages/"+m.ID, g.bearer, "")
		if st["status"] != "queued" && st["status"] != "retrying" {
			g.t.Fatalf("%s is %v during the outage, want queued or retrying", m.ID, st["status"])
		}
	}
	g.man.Messages.Queued = ms
}

// saveFixture records the fake's tickets and what Redis holds, saves Redis
// and writes the RDB file and the manifest.
func (g *fixtureRig) saveFixture() {
	t := g.t
	ctx := context.Background()
	rc := g.redis.Client(t)
	tok := rc.HGetAll(ctx, "deskrelay:oauth:default:token").Val()
	exp, _ := strconv.ParseInt(tok["expiry"], 10, 64)
	g.man.OAuth.AccessToken, g.man.OAuth.RefreshToken = tok["access"], tok["refresh"]
	g.man.OAuth.AccessExpiry = time.UnixMilli(exp).UTC()
	g.man.OAuth.Refreshes = g.zd.Refreshes()
	if g.man.OAuth.AccessToken == "" || g.man.OAuth.RefreshToken == "" {
		t.Fatalf("no OAuth token in Redis: %v", tok)
	}
	g.man.Reconcile.Checkpoint, _ = rc.Get(ctx, "deskrelay:reconcile:checkpoint").Int64()
	g.man.Reconcile.InvocationsCheckpoint, _ = rc.Get(ctx, "deskrelay:reconcile:invocations:checkpoint").Int64()
	if g.man.Reconcile.Checkpoint == 0 {
		t.Fatalf("no reconcile checkpoint in Redis")
	}
	for _, zt := range g.zd.Tickets() {
		u, _ := g.zd.User(zt.RequesterID)
		ft := fixtureTicket{ID: zt.ID, ExternalID: zt.ExternalID, Subject: zt.Subject, RequesterID: zt.RequesterID,
			RequesterName: u.Name, RequesterEmail: u.Email}
		for _, c := range g.zd.Comments(zt.ID) {
			ft.Comments = append(ft.Comments, fixtureComment{Body: strings.TrimSpace(c.Body), Agent: c.AuthorID != zt.RequesterID})
		}
		g.man.Tickets = append(g.man.Tickets, ft)
	}
	if err := rc.Save(ctx).Err(); err != nil {
		t.Fatalf("SAVE: %v", err)
	}
	if err := os.MkdirAll(upgradeFixtureDir, 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(g.redis.Dir, "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(upgradeFixtureDir, upgradeFixtureRDB), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	man, _ := json.MarshalIndent(g.man, "", "  ")
	if err := os.WriteFile(filepath.Join(upgradeFixtureDir, upgradeManifestRel), append(man, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	keys := rc.Keys(ctx, "*").Val()
	t.Logf("fixture: %d bytes, %d keys", len(raw), len(keys))
	fmt.Fprintln(os.Stderr, strings.Join(keys, "\n"))
}
