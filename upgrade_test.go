package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/schema"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// TestUpgradeFromV0 starts today's deskrelay on a Redis dump made by release
// 780b922 (testdata/upgrade) and checks that the single-account deployment
// keeps working with its data: queued messages are delivered once, in order,
// into their existing tickets; failed ones stay failed and replay once; the
// stored OAuth token is used; the reconcile checkpoint is honoured; the
// event ledger still dedupes, and the pending sink delivery goes out.
//
// It uses only the stable surface: run(), HTTP and the settings. When a
// release changes the Redis layout, it must migrate this data, and this test
// must stay green unchanged.
func TestUpgradeFromV0(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil && !redistest.Required() {
		t.Skipf("the upgrade test loads a Redis dump (%s) into a private redis-server, and no redis-server binary is installed; %s=1 makes this a failure",
			upgradeFixtureRDB, redistest.EnvRequire)
	}
	man := readUpgradeManifest(t)
	rdb := startRedisFromDump(t, filepath.Join(upgradeFixtureDir, upgradeFixtureRDB))
	zd := recreateFakeZendesk(t, man)
	// OAuth refreshes go to a token endpoint that knows only the rotated
	// refresh token stored in the fixture; the rest goes to the fake.
	tokens := &upgradeTokenEndpoint{zd: zd, clientID: man.OAuth.ClientID, secret: man.OAuth.ClientSecret, refresh: man.OAuth.RefreshToken}
	zdURL, _ := url.Parse(zd.URL())
	front := http.NewServeMux()
	front.Handle("POST /oauth/tokens", tokens)
	front.Handle("/", httputil.NewSingleHostReverseProxy(zdURL))
	frontSrv := httptest.NewServer(front)
	t.Cleanup(frontSrv.Close)
	sink := &upgradeSink{}
	sinkSrv := httptest.NewServer(sink)
	t.Cleanup(sinkSrv.Close)

	listen := freeLoopbackAddr(t)
	base := "http://" + listen
	webhookID := zd.AddWebhook(base+"/v1/zendesk/webhook", man.Settings["DESKRELAY_WEBHOOK_SECRET"], zendesktest.EventCommentAdded)
	env := map[string]string{
		"DESKRELAY_LISTEN":             listen,
		"DESKRELAY_REDIS_URL":          rdb.URL(),
		"DESKRELAY_ZENDESK_URL":        frontSrv.URL,
		"DESKRELAY_SINK_URL":           sinkSrv.URL + "/events",
		"DESKRELAY_SPOOL_DIR":          t.TempDir(),
		"DESKRELAY_ZENDESK_WEBHOOK_ID": webhookID,
		"DESKRELAY_LOG_LEVEL":          "debug",
	}
	for k, v := range man.Settings {
		env[k] = v
	}
	// The fixture ran the reconciler's run of its hour slot; a minute slot
	// makes sure that this test's start enqueues a run of its own even when
	// it runs within the hour the fixture was made in.
	env["DESKRELAY_RECONCILE_INTERVAL"] = "1m"
	_, logs, stop := startDaemon(t, env)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("deskrelay's log:\n%s", logs.String())
		}
	})
	u := &upgradeRun{t: t, man: man, zd: zd, tokens: tokens, sink: sink, base: base, env: env,
		bearer: "Bearer " + man.Settings["DESKRELAY_INGEST_TOKEN"]}

	t.Run("KeysMovedToTheCurrentLayout", func(t *testing.T) { keysMoved(t, rdb) })
	t.Run("QueuedMessagesIndexedForTheBacklog", func(t *testing.T) {
		// The fixture's queued messages enter the backlog index at start,
		// so the backlog metric counts them before they are delivered.
		if !regexp.MustCompile(`"queued_messages_indexed":[1-9]`).MatchString(logs.String()) {
			t.Errorf("the migration indexed no queued message: %s", logs.String())
		}
	})
	t.Run("QueuedMessagesDeliveredOnceInOrder", u.queuedDelivered)
	t.Run("FailedStayFailedAndReplayOnce", u.failedReplayed)
	t.Run("StoredOAuthTokenUsed", u.oauthTokenUsed)
	t.Run("StoredRefreshTokenRefreshes", u.storedRefreshTokenWorks)
	t.Run("ReconcileStartsAtCheckpoint", u.reconcileFromCheckpoint)
	t.Run("InvocationsScanStartsAtCheckpoint", u.invocationsFromCheckpoint)
	t.Run("PendingSinkDeliveryDelivered", u.pendingEventDelivered)
	t.Run("LedgerDedupesKnownEvent", u.ledgerDedupes)
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// startRedisFromDump starts a private redis-server that loads a copy of rdb.
func startRedisFromDump(t *testing.T, rdb string) *redistest.Server {
	t.Helper()
	raw, err := os.ReadFile(rdb)
	if err != nil {
		t.Fatalf("read the fixture: %v", err)
	}
	s := redistest.StartServer(t, redistest.ServerOptions{}) // skips without redis-server
	s.Kill(t)
	if err := os.WriteFile(filepath.Join(s.Dir, "dump.rdb"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s.Start(t)
	n, err := s.Client(t).DBSize(context.Background()).Result()
	if err != nil || n == 0 {
		t.Fatalf("redis-server did not load the fixture (%d keys, %v); see %s/redis.log", n, err, s.Dir)
	}
	return s
}

// recreateFakeZendesk gives a fresh fake the tickets (same ids, requesters
// and comments) the fixture's Redis refers to, and accepts the stored
// OAuth access token, but no refresh token.
func recreateFakeZendesk(t *testing.T, man upgradeManifest) *zendesktest.Server {
	t.Helper()
	zd := zendesktest.NewServer(t, zendesktest.Config{OAuthTokens: []string{man.OAuth.AccessToken}})
	zd.OAuthClient(man.OAuth.ClientID, man.OAuth.ClientSecret)
	for _, ft := range man.Tickets {
		id := zd.CreateTicket(zendesk.NewTicket{
			Subject:    ft.Subject,
			Comment:    zendesk.CommentInput{Body: ft.Comments[0].Body, Public: true},
			Requester:  &zendesk.Requester{Name: ft.RequesterName, Email: ft.RequesterEmail},
			ExternalID: ft.ExternalID,
		})
		tk, _ := zd.Ticket(id)
		if id != ft.ID || tk.RequesterID != ft.RequesterID {
			t.Fatalf("the fake numbers differently now: ticket %d requester %d, the fixture has ticket %d requester %d",
				id, tk.RequesterID, ft.ID, ft.RequesterID)
		}
		for _, c := range ft.Comments[1:] {
			if c.Agent {
				zd.AgentComment(id, c.Body, true)
			} else {
				zd.EndUserComment(id, c.Body)
			}
		}
	}
	return zd
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// upgradeSink is the platform's sink: it counts deliveries by event id.
type upgradeSink struct {
	mu  sync.Mutex
	ids []string
}

func (s *upgradeSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.ids = append(s.ids, r.Header.Get("webhook-id"))
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *upgradeSink) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, got := range s.ids {
		if got == id {
			n++
		}
	}
	return n
}

type upgradeRun struct {
	t      *testing.T
	man    upgradeManifest
	zd     *zendesktest.Server
	tokens *upgradeTokenEndpoint
	sink   *upgradeSink
	base   string
	bearer string
	env    map[string]string
}

func (u *upgradeRun) status(t *testing.T, id string) map[string]any {
	t.Helper()
	code, st := doJSON(t, http.MethodGet, u.base+"/v1/messages/"+id, u.bearer, "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/messages/%s = %d %v", id, code, st)
	}
	return st
}

func (u *upgradeRun) waitDelivered(t *testing.T, ms []fixtureMessage, within time.Duration) {
	t.Helper()
	testutil.WaitFor(t, within, func() bool {
		for _, m := range ms {
			if u.status(t, m.ID)["status"] != "delivered" {
				return false
			}
		}
		return true
	}, "every message delivered")
}

// commentBodies returns the bodies of the one ticket of conv; it fails
// unless there is exactly one.
func (u *upgradeRun) commentBodies(t *testing.T, conv string) (int64, []string) {
	t.Helper()
	tickets := u.zd.TicketsByExternalID(conv)
	if len(tickets) != 1 {
		t.Fatalf("conversation %s has %d tickets, want 1", conv, len(tickets))
	}
	var bodies []string
	for _, c := range u.zd.Comments(tickets[0].ID) {
		bodies = append(bodies, strings.TrimSpace(c.Body))
	}
	return tickets[0].ID, bodies
}

func (u *upgradeRun) queuedDelivered(t *testing.T) {
	queued := u.man.Messages.Queued
	// The fixture's outage gate is closed. A task that looks at it just
	// before the first probe opens it stays parked for the production
	// park time (1m, plus up to 25% jitter): allow for that.
	u.waitDelivered(t, queued, 3*time.Minute)
	want := map[string][]string{}
	for _, ft := range u.man.Tickets {
		for _, c := range ft.Comments {
			want[ft.ExternalID] = append(want[ft.ExternalID], c.Body)
		}
	}
	convs := []string{}
	for _, m := range queued {
		if _, ok := want[m.ConversationID]; !ok {
			convs = append(convs, m.ConversationID)
		}
		want[m.ConversationID] = append(want[m.ConversationID], m.Body)
	}
	for _, m := range queued {
		id, bodies := u.commentBodies(t, m.ConversationID)
		if m.TicketID != 0 && id != m.TicketID {
			t.Errorf("%s went to ticket %d, want the existing ticket %d", m.ID, id, m.TicketID)
		}
		if got := u.status(t, m.ID)["ticket_id"]; got != float64(id) {
			t.Errorf("%s reports ticket %v, want %d", m.ID, got, id)
		}
		if strings.Join(bodies, "|") != strings.Join(want[m.ConversationID], "|") {
			t.Errorf("conversation %s comments = %q, want %q (each once, in order)", m.ConversationID, bodies, want[m.ConversationID])
		}
	}
	if len(convs) == 0 {
		t.Errorf("the fixture queues nothing for a conversation without a ticket")
	}
}

func (u *upgradeRun) failedReplayed(t *testing.T) {
	failed := append(append([]fixtureMessage{}, u.man.Messages.FailedUnauthorized...), u.man.Messages.FailedInvalid...)
	if len(failed) < 2 {
		t.Fatalf("the fixture holds %d failed messages, want one unauthorized and one invalid", len(failed))
	}
	for i, m := range failed {
		want := "invalid"
		if i < len(u.man.Messages.FailedUnauthorized) {
			want = "unauthorized"
		}
		if st := u.status(t, m.ID); st["status"] != "failed" || st["reason"] != want {
			t.Fatalf("%s = %v/%v after the upgrade, want failed/%s", m.ID, st["status"], st["reason"], want)
		}
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"replay"}, envFrom(u.env), &out, &errb); err != nil {
		t.Fatalf("replay: %v\n%s%s", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "replayed "+strconv.Itoa(len(failed))) {
		t.Errorf("replay says %q, want %d replayed", out.String(), len(failed))
	}
	u.waitDelivered(t, failed, time.Minute)
	for _, m := range failed {
		if _, bodies := u.commentBodies(t, m.ConversationID); strings.Join(bodies, "|") != m.Body {
			t.Errorf("conversation %s comments = %q, want %q once", m.ConversationID, bodies, m.Body)
		}
	}
}

func (u *upgradeRun) oauthTokenUsed(t *testing.T) {
	if n, bad := u.tokens.counts(); n+bad != 0 {
		t.Errorf("deskrelay asked for %d OAuth refreshes (%d refused); the stored access token is valid until %s",
			n+bad, bad, u.man.OAuth.AccessExpiry)
	}
	api := 0
	for _, r := range u.zd.Requests() {
		if !strings.HasPrefix(r.Path, "/api/v2/") {
			continue
		}
		api++
		if r.Auth != "bearer" || r.Status == http.StatusUnauthorized {
			t.Errorf("%s %s: auth %q, status %d; want the stored bearer token accepted", r.Method, r.Path, r.Auth, r.Status)
		}
	}
	if api == 0 {
		t.Errorf("no API request reached Zendesk")
	}
}

// storedRefreshTokenWorks: when Zendesk rejects the access token, deskrelay
// refreshes with the rotated refresh token it stored, and the message goes
// through.
func (u *upgradeRun) storedRefreshTokenWorks(t *testing.T) {
	m := fixtureMessage{ID: "msg_refresh_1", ConversationID: "conv_refresh", Sequence: 1, AuthorName: "Fay",
		AuthorEmail: "fay@example.com", Body: "Sent after the access token was rejected"}
	u.zd.FailNext(1, http.StatusUnauthorized, zendesktest.Matching(http.MethodPost, "/api/v2/tickets"))
	if code, body := doJSON(t, http.MethodPost, u.base+"/v1/messages", u.bearer, m.json()); code != http.StatusAccepted {
		t.Fatalf("post %s: %d %v", m.ID, code, body)
	}
	u.waitDelivered(t, []fixtureMessage{m}, time.Minute)
	if n, bad := u.tokens.counts(); n != 1 || bad != 0 {
		t.Errorf("token endpoint: %d refreshes with the stored refresh token, %d with another; want 1 and 0", n, bad)
	}
}

// upgradeTokenEndpoint answers POST /oauth/tokens for one client and one
// refresh token at a time (rotating it), issuing the fake's access tokens.
type upgradeTokenEndpoint struct {
	zd                        *zendesktest.Server
	mu                        sync.Mutex
	clientID, secret, refresh string
	refreshes, refused        int
}

func (e *upgradeTokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct {
		GrantType    string `json:"grant_type"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	e.mu.Lock()
	defer e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if in.GrantType != "refresh_token" || in.ClientID != e.clientID || in.ClientSecret != e.secret || in.RefreshToken != e.refresh {
		e.refused++
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"unknown client or refresh token"}`)
		return
	}
	e.refreshes++
	e.refresh = "rt_upgrade_" + strconv.Itoa(e.refreshes)
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": e.zd.IssueAccessToken(), "refresh_token": e.refresh,
		"token_type": "bearer", "scope": "read write", "expires_in": 3600})
}

func (e *upgradeTokenEndpoint) counts() (refreshes, refused int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.refreshes, e.refused
}

func (u *upgradeRun) reconcileFromCheckpoint(t *testing.T) {
	want := strconv.FormatInt(u.man.Reconcile.Checkpoint, 10)
	var starts []string
	testutil.WaitFor(t, 30*time.Second, func() bool {
		starts = starts[:0]
		for _, r := range u.zd.Requests() {
			if strings.HasPrefix(r.Path, "/api/v2/incremental/") {
				starts = append(starts, r.Query.Get("start_time"))
			}
		}
		return len(starts) > 0
	}, "the reconciler's first export request")
	if starts[0] != want {
		t.Errorf("the first export starts at %s, want the stored checkpoint %s", starts[0], want)
	}
}

// invocationsFromCheckpoint: the scan of the webhook's invocations starts at
// the stored invocations checkpoint, as long as Zendesk still keeps
// invocations that old (7 days); beyond that the reconciler clamps it.
func (u *upgradeRun) invocationsFromCheckpoint(t *testing.T) {
	cp := time.Unix(u.man.Reconcile.InvocationsCheckpoint, 0).UTC()
	if u.man.Reconcile.InvocationsCheckpoint == 0 {
		t.Fatalf("the fixture has no invocations checkpoint")
	}
	if time.Since(cp) > 6*24*time.Hour {
		t.Skipf("the invocations checkpoint (%s) is older than Zendesk's invocation retention; the reconciler clamps it", cp)
	}
	// The guardian's early warning also lists invocations (the last minutes);
	// the scheduled scan is the request that starts at the checkpoint.
	want := cp.Format(time.RFC3339)
	var from []string
	found := false
	deadline := time.Now().Add(30 * time.Second)
	for !found && time.Now().Before(deadline) {
		from = from[:0]
		for _, r := range u.zd.Requests() {
			if strings.HasSuffix(r.Path, "/invocations") {
				from = append(from, r.Query.Get("filter[from_ts]"))
				found = found || r.Query.Get("filter[from_ts]") == want
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !found {
		t.Errorf("no invocations request starts at the stored checkpoint %s; they start at %q", want, from)
	}
}

func (u *upgradeRun) pendingEventDelivered(t *testing.T) {
	for _, ev := range u.man.Events.Pending {
		testutil.WaitFor(t, 60*time.Second, func() bool { return u.sink.count(ev.ID) > 0 }, "pending sink delivery "+ev.ID)
		if n := u.sink.count(ev.ID); n != 1 {
			t.Errorf("event %s delivered %d times, want once", ev.ID, n)
		}
	}
}

// ledgerDedupes posts an event the sink already had again, then a new event
// of the same ticket; once the new one is at the sink, the old one (earlier
// in the conversation's order) would have been too, had it been taken.
func (u *upgradeRun) ledgerDedupes(t *testing.T) {
	old := u.man.Events.Delivered[0]
	code := u.postWebhook(t, old.WebhookBody)
	if code/100 != 2 {
		t.Fatalf("re-posting a known event answered %d, want 2xx", code)
	}
	cid := u.zd.AgentComment(old.TicketID, "A new reply after the upgrade", true)
	fresh := "zd:comment:" + strconv.FormatInt(cid, 10)
	testutil.WaitFor(t, 60*time.Second, func() bool { return u.sink.count(fresh) == 1 }, "the new event at the sink")
	if n := u.sink.count(old.ID); n != 0 {
		t.Errorf("event %s, in the ledger before the upgrade, was delivered again %d times", old.ID, n)
	}
}

// postWebhook posts body as Zendesk would, signed now, with a new invocation id.
func (u *upgradeRun) postWebhook(t *testing.T, body string) int {
	t.Helper()
	ts := time.Now().UTC().Format(time.RFC3339)
	mac := hmac.New(sha256.New, []byte(u.man.Settings["DESKRELAY_WEBHOOK_SECRET"]))
	mac.Write([]byte(ts + body))
	req, err := http.NewRequest(http.MethodPost, u.base+"/v1/zendesk/webhook", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Zendesk-Webhook-Invocation-Id", "upgrade-test-"+strconv.FormatInt(time.Now().UnixNano(), 10))
	req.Header.Set("X-Zendesk-Webhook-Signature-Timestamp", ts)
	req.Header.Set("X-Zendesk-Webhook-Signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post webhook: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// keysMoved checks that serve moved every key of layout 0 (deskrelay:<rest>)
// to the account-tagged layout (deskrelay:{default}:<rest>) and recorded it.
func keysMoved(t *testing.T, s *redistest.Server) {
	c := s.Client(t)
	ctx := context.Background()
	if v := c.Get(ctx, "deskrelay:schema").Val(); v != strconv.Itoa(schema.Version) {
		t.Fatalf("deskrelay:schema = %q, want %d", v, schema.Version)
	}
	all, err := c.Keys(ctx, "deskrelay:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	tagged := 0
	for _, k := range all {
		switch {
		case k == "deskrelay:schema", k == keys.Accounts():
		case strings.HasPrefix(k, keys.Default.Prefix()):
			tagged++
		default:
			t.Errorf("key %s left in layout 0", k)
		}
	}
	// The fixture holds 39 keys of its own; by now, delivered work may have
	// removed a few (pending sets), and leases or buckets added some.
	if tagged < 30 {
		t.Errorf("%d keys under %s, want nearly all of the fixture's 39 (at least 30)", tagged, keys.Default.Prefix())
	}
}
