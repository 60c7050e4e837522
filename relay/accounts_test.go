package relay_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/httpx"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// accounts is one deployment serving several Zendesk accounts, as main
// builds it: one Relay per account on one Redis, one shared asynq client,
// inspector, registry and server, a dispatcher that routes each task to its
// account's mux by the payload's "account", and a fake Zendesk per account.
type accounts struct {
	t      testing.TB
	rdb    redis.UniversalClient
	opt    asynq.RedisConnOpt
	insp   *asynq.Inspector
	client *asynq.Client
	reg    *prometheus.Registry
	relays map[string]*relay.Relay
	fakes  map[string]*zendesktest.Server
	muxes  map[string]*asynq.ServeMux
}

// accountOptions are one account's limits: perMinute for its limiter and
// fake (0: production's share of the fake's default).
type accountOptions struct {
	name      string
	perMinute int
}

func newAccounts(tb testing.TB, workers int, accts ...accountOptions) *accounts {
	tb.Helper()
	db := redistest.New(tb)
	a := &accounts{t: tb, rdb: db.Client, opt: db.AsynqOpt(), reg: prometheus.NewRegistry(),
		relays: map[string]*relay.Relay{}, fakes: map[string]*zendesktest.Server{}, muxes: map[string]*asynq.ServeMux{}}
	a.insp = asynq.NewInspector(a.opt)
	a.client = asynq.NewClient(a.opt)
	tb.Cleanup(func() { _ = a.insp.Close(); _ = a.client.Close() })
	for _, o := range accts {
		a.addAccount(o)
	}
	if workers > 0 {
		a.startWorkers(workers, time.Second)
	}
	return a
}

func (a *accounts) addAccount(o accountOptions) {
	tb := a.t
	fc := zendesktest.Config{Logf: func(string, ...any) {}}
	lc := budget.Config{Space: keys.For(o.name)}
	if o.perMinute > 0 {
		fc.RateLimit, fc.UpdateTicketLimit, fc.UserCreateLimit = o.perMinute*2, o.perMinute*2, o.perMinute*2
		lc.Rate = budget.PerMinute(o.perMinute)
	}
	fake := zendesktest.NewServer(tb, fc)
	lim := budget.New(a.rdb, lc)
	zd, err := zendesk.New(zendesk.Config{BaseURL: fake.URL(), Email: fake.Email(), APIToken: fake.APIToken(),
		Timeout: 5 * time.Second, OnResponse: lim.Observe})
	if err != nil {
		tb.Fatalf("zendesk.New: %v", err)
	}
	r, err := relay.New(fastConfig(relay.Config{}), relay.Deps{Redis: a.rdb, Space: keys.For(o.name),
		Client: a.client, Inspector: a.insp, Zendesk: zd, Limiter: lim, Log: testLogger(tb), Metrics: a.reg})
	if err != nil {
		tb.Fatalf("relay.New: %v", err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	mux := asynq.NewServeMux()
	r.Register(mux)
	a.relays[o.name], a.fakes[o.name], a.muxes[o.name] = r, fake, mux
}

// dispatch routes a task to its account's mux, as main's dispatcher does.
func (a *accounts) dispatch(ctx context.Context, t *asynq.Task) error {
	var p struct {
		Account string `json:"account"`
	}
	_ = json.Unmarshal(t.Payload(), &p)
	mux := a.muxes[cmp.Or(p.Account, keys.DefaultAccount)]
	if mux == nil {
		return fmt.Errorf("task %s of unknown account %q", t.Type(), p.Account)
	}
	return mux.ProcessTask(ctx, t)
}

func (a *accounts) startWorkers(n int, poll time.Duration) {
	srv := queues.NewServer(a.opt, queues.ServerConfig{
		Concurrency:     n,
		Policy:          queues.Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: testRetryMaxDelay},
		ShutdownTimeout: 5 * time.Second,
		PollInterval:    poll,
	}, testLogger(a.t))
	if err := srv.Start(asynq.HandlerFunc(a.dispatch)); err != nil {
		a.t.Fatalf("asynq server: %v", err)
	}
	a.t.Cleanup(srv.Shutdown)
}

func (a *accounts) pick(account string) *relay.Relay { return a.relays[account] }

// writes counts the successful ticket writes an account's fake took.
func writes(fake *zendesktest.Server) int {
	return countSince(fake, time.Time{}, func(r zendesktest.RecordedRequest) bool { return isWrite(r) && r.Status < 300 })
}

// TestAccountsAreSeparate: the same message id and conversation id in two
// accounts are two messages, each delivered once, to its own Zendesk.
func TestAccountsAreSeparate(t *testing.T) {
	a := newAccounts(t, 4, accountOptions{name: keys.DefaultAccount}, accountOptions{name: "acme"})
	ctx := context.Background()
	for _, acct := range []string{keys.DefaultAccount, "acme"} {
		m := msg("shared", 1)
		m.Body = "hello from " + acct
		mustEnqueue(t, a.relays[acct], m)
	}
	for _, acct := range []string{keys.DefaultAccount, "acme"} {
		waitStatus(t, a.relays[acct], []string{"shared-m01"}, "delivered", 20*time.Second)
		checkExactlyOnce(t, a.fakes[acct], map[string][]string{"shared": {"hello from " + acct}})
	}
	// Each message lives in its account's keys.
	for _, acct := range []string{keys.DefaultAccount, "acme"} {
		if n, err := a.rdb.Exists(ctx, keys.For(acct).Message("shared-m01")).Result(); err != nil || n != 1 {
			t.Errorf("%s's record: exists=%d, %v", acct, n, err)
		}
	}
	if got := deliveredOf(t, a.reg, "acme"); got != 1 {
		t.Errorf("deliveries{account=acme,outcome=delivered} = %v, want 1", got)
	}
	if got := deliveredOf(t, a.reg, keys.DefaultAccount); got != 1 {
		t.Errorf("deliveries{account=default,outcome=delivered} = %v, want 1", got)
	}
	// Closing an account forgets its series.
	_ = a.relays["acme"].Close()
	if got := deliveredOf(t, a.reg, "acme"); got != -1 {
		t.Errorf("acme's series after Close = %v, want gone", got)
	}
}

// deliveredOf reads deskrelay_outbound_deliveries_total{account, outcome=
// delivered}; -1 when there is no such series.
func deliveredOf(tb testing.TB, reg *prometheus.Registry, account string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "deskrelay_outbound_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["account"] == account && labels["outcome"] == "delivered" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

// TestTaskIDs: the default account's task ids stay as they were; another
// account's name its account.
func TestTaskIDs(t *testing.T) {
	a := newAccounts(t, 0, accountOptions{name: keys.DefaultAccount}, accountOptions{name: "acme"})
	for acct, want := range map[string]string{keys.DefaultAccount: "msg{t1}", "acme": "msg{acme}{t1}"} {
		m := msg("ids", 1)
		m.ID = "t1"
		mustEnqueue(t, a.relays[acct], m)
		ti, err := a.insp.GetTaskInfo(queues.Outbound, want)
		if err != nil {
			t.Fatalf("%s: task %s: %v", acct, want, err)
		}
		var p map[string]any
		_ = json.Unmarshal(ti.Payload, &p)
		if acct == keys.DefaultAccount && p["account"] != nil {
			t.Errorf("default's payload %s names an account, want none (as before)", ti.Payload)
		}
		if acct == "acme" && p["account"] != "acme" {
			t.Errorf("acme's payload %s, want account acme", ti.Payload)
		}
	}
	// The gate probe: one per account, default's id as before.
	for acct, want := range map[string]string{keys.DefaultAccount: "outbound-gate-probe", "acme": "outbound-gate-probe{acme}"} {
		a.relays[acct].EnsureProbe(context.Background())
		ti, err := a.insp.GetTaskInfo(queues.Outbound, want)
		if err != nil {
			t.Fatalf("%s: probe task %s: %v", acct, want, err)
		}
		if acct == "acme" && string(ti.Payload) != `{"account":"acme"}` {
			t.Errorf("acme's probe payload %s, want its account", ti.Payload)
		}
		if acct == keys.DefaultAccount && len(ti.Payload) != 0 {
			t.Errorf("default's probe payload %s, want none (as before)", ti.Payload)
		}
	}
}

// TestUnknownAccount: a message for an account the deployment does not
// serve is answered 422 naming the field, and nothing is kept.
func TestUnknownAccount(t *testing.T) {
	a := newAccounts(t, 0, accountOptions{name: keys.DefaultAccount}, accountOptions{name: "acme"})
	mux := http.NewServeMux()
	mux.Handle("POST /v1/messages", httpx.RequireBearer(ingestToken, relay.PostMessage(a.pick)))
	mux.Handle("GET /v1/messages/{id}", httpx.RequireBearer(ingestToken, relay.GetMessage(a.pick)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	body := `{"id":"u1","conversation_id":"c1","author":{"email":"ann@example.com"},"body":"hi","account":"nobody"}`
	ans := do(t, "POST", srv.URL+"/v1/messages", "application/json", ingestToken, body)
	code, message := errorCode(ans)
	if ans.status != http.StatusUnprocessableEntity || code != "unknown_account" || !containsAll(message, "account", "nobody") {
		t.Errorf("POST for an unknown account = %d %s %q, want 422 unknown_account naming the account", ans.status, code, message)
	}
	nothingKept(t, a.rdb, a.opt)
	ans = do(t, "GET", srv.URL+"/v1/messages/u1?account=nobody", "", ingestToken, "")
	if code, _ := errorCode(ans); ans.status != http.StatusUnprocessableEntity || code != "unknown_account" {
		t.Errorf("GET for an unknown account = %d %s, want 422 unknown_account", ans.status, code)
	}
	// The known accounts: acme's by name, default's without one.
	ans = do(t, "POST", srv.URL+"/v1/messages", "application/json", ingestToken,
		`{"id":"u1","conversation_id":"c1","author":{"email":"ann@example.com"},"body":"hi","account":"acme"}`)
	if ans.status != http.StatusAccepted {
		t.Fatalf("POST for acme = %d %s", ans.status, ans.raw)
	}
	if ans = do(t, "GET", srv.URL+"/v1/messages/u1?account=acme", "", ingestToken, ""); ans.status != http.StatusOK {
		t.Errorf("GET u1 of acme = %d %s", ans.status, ans.raw)
	}
	if ans = do(t, "GET", srv.URL+"/v1/messages/u1", "", ingestToken, ""); ans.status != http.StatusNotFound {
		t.Errorf("GET u1 of default = %d %s, want 404 (it is acme's)", ans.status, ans.raw)
	}
}

// TestPreviousReleasePayload: a default account's task enqueued by the
// previous release (no "account" in its payload, its old task id) still
// delivers through the dispatcher.
func TestPreviousReleasePayload(t *testing.T) {
	a := newAccounts(t, 0, accountOptions{name: keys.DefaultAccount}, accountOptions{name: "acme"})
	r := a.relays[keys.DefaultAccount]
	m := msg("old", 1)
	mustEnqueue(t, r, m)
	if err := a.insp.DeleteTask(queues.Outbound, "msg{"+m.ID+"}"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.client.Enqueue(asynq.NewTask(relay.TypeMessage, []byte(`{"id":"`+m.ID+`"}`)),
		asynq.Queue(queues.Outbound), asynq.TaskID("msg:"+m.ID), asynq.MaxRetry(queues.MaxRetry)); err != nil {
		t.Fatal(err)
	}
	a.startWorkers(2, 100*time.Millisecond)
	waitStatus(t, r, []string{m.ID}, "delivered", 20*time.Second)
	checkExactlyOnce(t, a.fakes[keys.DefaultAccount], map[string][]string{"old": {m.Body}})
	if n := writes(a.fakes["acme"]); n != 0 {
		t.Errorf("acme's Zendesk took %d writes, want 0", n)
	}
}

// TestOldestPendingPerAccount: each account's oldest pending message is its
// own, although the accounts share the queue (and here a message id).
func TestOldestPendingPerAccount(t *testing.T) {
	a := newAccounts(t, 0, accountOptions{name: keys.DefaultAccount}, accountOptions{name: "acme"})
	ctx := context.Background()
	mustEnqueue(t, a.relays[keys.DefaultAccount], msg("old", 1))
	time.Sleep(20 * time.Millisecond)
	mustEnqueue(t, a.relays["acme"], msg("old", 1))
	for _, acct := range []string{keys.DefaultAccount, "acme"} {
		ms, err := a.rdb.HGet(ctx, keys.For(acct).Message("old-m01"), "accepted_at").Int64()
		if err != nil {
			t.Fatal(err)
		}
		at, ok, err := a.relays[acct].OldestPending(ctx)
		if err != nil || !ok || !at.Equal(time.UnixMilli(ms)) {
			t.Errorf("%s: OldestPending = %v, %v, %v; want its own message's %v", acct, at, ok, err, time.UnixMilli(ms))
		}
	}
}

// TestBacklogSet: the account's queued set (keys.Space.OutboundQueued,
// read by Summary for the backlog gauge) counts exactly the messages
// accepted and neither delivered nor failed, by accepted_at.
func TestBacklogSet(t *testing.T) {
	a := newAccounts(t, 0, accountOptions{name: keys.DefaultAccount}, accountOptions{name: "acme"})
	ctx := context.Background()
	r := a.relays["acme"]
	queued := func() []string {
		ids, err := a.rdb.ZRange(ctx, keys.For("acme").OutboundQueued(), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	_, all := wantBodies(1, 3, "backlog")
	enqueueAll(t, r, all)
	if got := queued(); len(got) != 3 {
		t.Fatalf("queued set after intake = %v, want the 3 messages", got)
	}
	ms, _ := a.rdb.HGet(ctx, keys.For("acme").Message(all[0].ID), "accepted_at").Int64()
	if s, err := a.rdb.ZScore(ctx, keys.For("acme").OutboundQueued(), all[0].ID).Result(); err != nil || int64(s) != ms {
		t.Errorf("score = %v, %v; want accepted_at %d", s, err, ms)
	}
	if n, _ := a.rdb.ZCard(ctx, keys.Default.OutboundQueued()).Result(); n != 0 {
		t.Errorf("default's queued set holds %d, want 0 (acme's messages)", n)
	}
	a.fakes["acme"].FailNext(1, http.StatusUnprocessableEntity)
	a.startWorkers(2, 100*time.Millisecond)
	testutil.WaitFor(t, 20*time.Second, func() bool { return len(queued()) == 0 }, "the queued set to empty as messages finish")
	sum, err := r.Replay(ctx, relay.ReplayOptions{})
	if err != nil || sum.Replayed != 1 {
		t.Fatalf("replay = %+v, %v; want the failed message replayed", sum, err)
	}
	if got := queued(); len(got) != 1 {
		t.Errorf("queued set after replay = %v, want the replayed message", got)
	}
	testutil.WaitFor(t, 20*time.Second, func() bool { return len(queued()) == 0 }, "the replayed message to finish")
}
