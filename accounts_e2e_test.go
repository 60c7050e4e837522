package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// accountsRun is deskrelay serving two Zendesk accounts from an accounts
// file, each with its own fake Zendesk, and one sink.
type accountsRun struct {
	zd     map[string]*zendesktest.Server
	sink   *clusterSink
	env    map[string]string
	dir    string // the accounts file's directory (secret files beside it)
	base   string
	bearer string
	logs   *testutil.SyncBuffer
	// infoWorks: the Redis answers INFO (a real server; on a cluster,
	// every master's), so /v1/status shows its setup.
	infoWorks bool
}

// accountEntry is one account of the test's accounts file: an API token
// and a webhook secret in files beside it.
func (r *accountsRun) accountEntry(t *testing.T, name string) string {
	t.Helper()
	for file, secret := range map[string]string{name + "_token": "zd-token-" + name + "-SECRET", name + "_webhook": "webhook-" + name + "-SECRET"} {
		if err := os.WriteFile(filepath.Join(r.dir, file), []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return "  - name: " + name + "\n    url: " + r.zd[name].URL() + "\n    email: agent@" + name + ".example\n" +
		"    api_token_file: " + name + "_token\n    webhook_secret_file: " + name + "_webhook\n"
}

func (r *accountsRun) writeFile(t *testing.T, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, "accounts.yaml"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newAccountsRun(t *testing.T, redisURL string, names ...string) *accountsRun {
	r := &accountsRun{zd: map[string]*zendesktest.Server{}, dir: t.TempDir()}
	for _, n := range append(names, "initech") {
		r.zd[n] = zendesktest.NewServer(t, zendesktest.Config{Email: "agent@" + n + ".example", APIToken: "zd-token-" + n + "-SECRET"})
	}
	body := "accounts:\n"
	for _, n := range names {
		body += r.accountEntry(t, n)
	}
	r.writeFile(t, body)
	env := daemonEnv(t, redisURL, "")
	for _, k := range []string{"DESKRELAY_ZENDESK_URL", "DESKRELAY_ZENDESK_EMAIL", "DESKRELAY_ZENDESK_API_TOKEN",
		"DESKRELAY_WEBHOOK_SECRET", "DESKRELAY_TARGET_USER", "DESKRELAY_TARGET_PASSWORD"} {
		delete(env, k)
	}
	env["DESKRELAY_ACCOUNTS_FILE"] = filepath.Join(r.dir, "accounts.yaml")
	wh, err := standardwebhooks.NewWebhook(env["DESKRELAY_SINK_SECRET"])
	if err != nil {
		t.Fatal(err)
	}
	r.sink = &clusterSink{wh: wh, ids: map[string]int{}}
	sinkSrv := httptest.NewServer(r.sink)
	t.Cleanup(sinkSrv.Close)
	env["DESKRELAY_SINK_URL"] = sinkSrv.URL + "/events"
	r.env, r.bearer = env, "Bearer "+env["DESKRELAY_INGEST_TOKEN"]
	r.base, r.logs, _ = startDaemon(t, env)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("deskrelay's log:\n%s", r.logs.String())
		}
	})
	return r
}

// TestManyAccountsEndToEnd: one serve, an accounts file of two accounts,
// on a single Redis and on a Redis Cluster: the same message id in both is
// two messages, each delivered once to its own Zendesk; each account's
// webhook reaches the sink with its own event ids; a message or webhook
// without an account is refused (there is no account default); status,
// `deskrelay accounts` and metrics name each account.
func TestManyAccountsEndToEnd(t *testing.T) {
	t.Run("Redis", func(t *testing.T) {
		db := redistest.New(t)
		r := newAccountsRun(t, db.URL(), "acme", "globex")
		r.infoWorks = !db.Embedded // miniredis answers no INFO sections
		r.check(t)
		t.Run("Reload", r.reload)
	})
	t.Run("RedisCluster", func(t *testing.T) {
		r := newAccountsRun(t, redistest.StartCluster(t).URL(), "acme", "globex")
		r.infoWorks = true
		r.check(t)
	})
}

func (r *accountsRun) check(t *testing.T) {
	tickets := map[string]int64{}
	for _, name := range []string{"acme", "globex"} {
		tickets[name] = r.deliver(t, name, "msg_same_1", "conv_same")
	}
	if code, body := doJSON(t, http.MethodPost, r.base+"/v1/messages", r.bearer, `{"id":"m_nodefault","conversation_id":"c","author":{"email":"a@example.com"},"body":"x"}`); code != http.StatusUnprocessableEntity || !strings.Contains(body["error"].(map[string]any)["code"].(string), "account") {
		t.Fatalf("a message without an account and no account default: %d %v", code, body)
	}
	for _, name := range []string{"acme", "globex"} {
		r.zd[name].AddWebhook(r.base+"/v1/zendesk/webhook/"+name, "webhook-"+name+"-SECRET", zendesktest.EventCommentAdded)
		cid := r.zd[name].AgentComment(tickets[name], "Reply from "+name, true)
		id := "zd:" + name + ":comment:" + itoa(cid)
		testutil.WaitFor(t, 30*time.Second, func() bool { n, _ := r.sink.count(id); return n > 0 }, "the agent's reply at the sink as "+id)
	}
	body := `{"type":"zen:event-type:ticket.comment_added"}`
	req, _ := http.NewRequest(http.MethodPost, r.base+"/v1/zendesk/webhook", strings.NewReader(body))
	for k, v := range signed("webhook-acme-SECRET", body) {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the webhook path without an account, no account default: %d, want 404", resp.StatusCode)
	}
	r.checkAccountsCommand(t, "acme", "globex")
	code, raw := adminGetRaw(t, r.base+"/v1/status?account=globex", r.env["DESKRELAY_ADMIN_PASSWORD"])
	var st statusReport
	if err := json.Unmarshal(raw, &st); err != nil || code != http.StatusOK || st.Account != "globex" || len(st.Accounts) != 2 ||
		(r.infoWorks && (st.RedisSetup.Error != "" || st.RedisSetup.AOFEnabled == nil)) {
		t.Fatalf("/v1/status?account=globex = %d %s", code, raw)
	}
	if code, _ := adminGetRaw(t, r.base+"/v1/status?account=nope", r.env["DESKRELAY_ADMIN_PASSWORD"]); code != http.StatusNotFound {
		t.Fatalf("/v1/status?account=nope = %d, want 404", code)
	}
	_, metrics := adminGetRaw(t, r.base+"/metrics", "")
	for _, want := range []string{`deskrelay_outbound_backlog{account="acme"} 0`, `deskrelay_outbound_backlog{account="globex"} 0`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	assertNoSecrets(t, map[string]string{"a": "zd-token-acme-SECRET", "b": "webhook-globex-SECRET"}, r.logs.String())
}

// deliver posts a message for the account and waits for it to be
// delivered; it returns the conversation's ticket in that account's Zendesk.
func (r *accountsRun) deliver(t *testing.T, account, id, conv string) int64 {
	t.Helper()
	msg := `{"account":"` + account + `","id":"` + id + `","conversation_id":"` + conv + `","author":{"name":"Ann","email":"ann@example.com"},"body":"Hello from ` + account + `"}`
	if code, body := doJSON(t, http.MethodPost, r.base+"/v1/messages", r.bearer, msg); code != http.StatusAccepted {
		t.Fatalf("post to %s: %d %v", account, code, body)
	}
	testutil.WaitFor(t, 30*time.Second, func() bool {
		_, st := doJSON(t, http.MethodGet, r.base+"/v1/messages/"+id+"?account="+account, r.bearer, "")
		return st["status"] == "delivered"
	}, account+"'s message delivered")
	got := r.zd[account].TicketsByExternalID(conv)
	if len(got) != 1 || len(r.zd[account].Comments(got[0].ID)) != 1 {
		t.Fatalf("%s's Zendesk: %d tickets for %s, want 1 with one comment", account, len(got), conv)
	}
	return got[0].ID
}

// checkAccountsCommand: `deskrelay accounts --json` lists the accounts
// served, each with its state.
func (r *accountsRun) checkAccountsCommand(t *testing.T, served ...string) map[string]accountState {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"accounts", "--json"}, envFrom(r.env), &out, &errb); err != nil {
		t.Fatalf("accounts: %v\n%s", err, errb.String())
	}
	var states []accountState
	if err := json.Unmarshal(out.Bytes(), &states); err != nil {
		t.Fatalf("accounts --json: %v\n%s", err, out.String())
	}
	byName := map[string]accountState{}
	for _, s := range states {
		byName[s.Name] = s
	}
	for _, name := range served {
		s, ok := byName[name]
		if !ok || !s.Served || s.Gate != "open" || s.Credentials != "ok" || s.Auth != "api-token" || len(s.Errors) > 0 {
			t.Errorf("accounts: %s = %+v", name, s)
		}
	}
	return byName
}

// reload: SIGHUP re-reads the file: a removed account's messages are
// refused, an added one is served at once, and a bad file keeps the
// running accounts (its problems in /v1/status).
func (r *accountsRun) reload(t *testing.T) {
	delivered := `deskrelay_outbound_deliveries_total{account="acme",outcome="delivered"}`
	if _, m := adminGetRaw(t, r.base+"/metrics", ""); !strings.Contains(string(m), delivered) {
		t.Fatalf("/metrics lacks %s before the reload", delivered)
	}
	// acme changes (its rate limit), globex goes, initech comes.
	r.writeFile(t, "accounts:\n"+r.accountEntry(t, "acme")+"    rate_limit: 300\n"+r.accountEntry(t, "initech"))
	r.hup(t, 1)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return strings.Contains(r.logs.String(), `"changed":["acme"],"removed":["globex"]`)
	}, "the reload")
	if _, m := adminGetRaw(t, r.base+"/metrics", ""); !strings.Contains(string(m), delivered) {
		t.Errorf("/metrics lost %s when acme's configuration changed", delivered)
	}
	if code, _ := doJSON(t, http.MethodPost, r.base+"/v1/messages", r.bearer, `{"account":"globex","id":"m_g2","conversation_id":"c","author":{"email":"a@example.com"},"body":"x"}`); code != http.StatusUnprocessableEntity {
		t.Fatalf("a message for a removed account = %d, want 422", code)
	}
	r.deliver(t, "initech", "msg_i_1", "conv_i")
	r.deliver(t, "acme", "msg_a_2", "conv_a2")
	// The removed account still shows, as not served (its data is in Redis).
	if g, ok := r.checkAccountsCommand(t, "acme", "initech")["globex"]; !ok || g.Served {
		t.Errorf("accounts: the removed globex = %+v (listed: %v), want it shown as not served", g, ok)
	}

	r.writeFile(t, "accounts:\n  - name: acme\n    subdomain: acme\n    api_token: inline\n")
	r.hup(t, 2)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return strings.Contains(r.logs.String(), "accounts file not reloaded")
	}, "the bad file refused")
	_, raw := adminGetRaw(t, r.base+"/v1/status", r.env["DESKRELAY_ADMIN_PASSWORD"])
	if !strings.Contains(string(raw), `"ok":false`) || !strings.Contains(string(raw), "api_token") {
		t.Fatalf("/v1/status does not show the failed reload: %s", raw)
	}
	r.deliver(t, "initech", "msg_i_2", "conv_i2") // still served
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"accounts"}, envFrom(map[string]string{"DESKRELAY_REDIS_URL": r.env["DESKRELAY_REDIS_URL"],
		"DESKRELAY_ACCOUNTS_FILE": filepath.Join(r.dir, "accounts.yaml")}), &out, &errb); err == nil {
		t.Fatalf("accounts with a bad file succeeded:\n%s", out.String())
	}
}

// hup sends SIGHUP to the process (serve's watchReload catches it) and
// waits for the n-th reload to be logged.
func (r *accountsRun) hup(t *testing.T, n int) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return strings.Count(r.logs.String(), "accounts file reloaded")+strings.Count(r.logs.String(), "accounts file not reloaded") >= n
	}, "the reload logged")
}

// TestSIGHUPWithoutAccountsFileKeepsServing: a single-account deployment
// (no accounts file) logs a SIGHUP and keeps serving; it is never stopped
// by it.
func TestSIGHUPWithoutAccountsFileKeepsServing(t *testing.T) {
	db := redistest.New(t)
	zd := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	env := daemonEnv(t, db.URL(), zd.URL())
	base, logs, stop := startDaemon(t, env)
	testutil.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), `"message":"deskrelay starting"`) }, "start")
	time.Sleep(100 * time.Millisecond) // the background work (and its SIGHUP handler) starts after the listener
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "SIGHUP: no DESKRELAY_ACCOUNTS_FILE") }, "the SIGHUP logged")
	if code, _ := doJSON(t, http.MethodGet, base+"/healthz", "", ""); code != http.StatusOK {
		t.Fatalf("/healthz after SIGHUP = %d", code)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}
