package relay_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// env is one relay (or several) on a real Redis against the fake Zendesk.
type env struct {
	t     testing.TB
	rdb   redis.UniversalClient
	opt   asynq.RedisConnOpt
	fake  *zendesktest.Server
	zd    *zendesk.Client
	relay *relay.Relay
	insp  *asynq.Inspector
	reg   *prometheus.Registry
}

type envOptions struct {
	cfg       relay.Config
	fake      zendesktest.Config
	rateLimit int // shared limiter, per minute; default production's (50% of what the fake reports)
	// unlimited raises Zendesk's limits (the fake's and the limiter's) for
	// a test that measures something else under load; say why at the call
	// site. Benchmarks always run so. Otherwise tests see Zendesk's real
	// limits, the fake's defaults.
	unlimited bool
	workers   int // asynq concurrency; default 10
	noWorkers bool
	zdTimeout time.Duration
	rdb       redis.UniversalClient // default: redistest.New
	opt       asynq.RedisConnOpt
	outcomes  relay.OutcomeSink // Deps.Outcomes
}

func testLogger(tb testing.TB) zerolog.Logger {
	if os.Getenv("DESKRELAY_TEST_LOG") != "" {
		return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Logger()
	}
	return zerolog.New(io.Discard)
}

// testRetryMaxDelay caps the workers' backoff in tests.
const testRetryMaxDelay = 2 * time.Second

// fastConfig is a relay Config with timings for tests.
func fastConfig(c relay.Config) relay.Config {
	c.TurnPoll = cmp.Or(c.TurnPoll, 300*time.Millisecond)
	c.GateProbeInterval = cmp.Or(c.GateProbeInterval, 200*time.Millisecond)
	c.GateParkTime = cmp.Or(c.GateParkTime, 20*time.Second)
	c.LockTTL = cmp.Or(c.LockTTL, 3*time.Second)
	c.AmbiguousSettle = cmp.Or(c.AmbiguousSettle, 300*time.Millisecond)
	c.CredentialProbeInterval = cmp.Or(c.CredentialProbeInterval, 300*time.Millisecond)
	c.AttemptTimeout = cmp.Or(c.AttemptTimeout, 30*time.Second)
	return c
}

func newEnv(tb testing.TB, o envOptions) *env {
	tb.Helper()
	e := &env{t: tb, rdb: o.rdb, opt: o.opt}
	if e.rdb == nil {
		db := redistest.New(tb)
		e.rdb, e.opt = db.Client, db.AsynqOpt()
	}
	if _, bench := tb.(*testing.B); bench || o.unlimited {
		o.rateLimit = cmp.Or(o.rateLimit, 100000)
		o.fake.RateLimit = cmp.Or(o.fake.RateLimit, 100000)
		o.fake.UpdateTicketLimit = cmp.Or(o.fake.UpdateTicketLimit, 100000)
		o.fake.UserCreateLimit = cmp.Or(o.fake.UserCreateLimit, 100000)
	}
	if o.fake.Logf == nil {
		o.fake.Logf = func(string, ...any) {}
	}
	e.fake = zendesktest.NewServer(tb, o.fake)
	e.reg = prometheus.NewRegistry()
	e.insp = asynq.NewInspector(e.opt)
	tb.Cleanup(func() { _ = e.insp.Close() })
	e.relay = e.newRelay(o)
	return e
}

// newRelay starts one more relay process-alike (its own limiter handle,
// Zendesk client and asynq server) on the env's Redis.
func (e *env) newRelay(o envOptions) *relay.Relay {
	tb := e.t
	tb.Helper()
	if o.workers == 0 {
		o.workers = 10
	}
	if o.zdTimeout == 0 {
		o.zdTimeout = 5 * time.Second
	}
	var lim *budget.Limiter
	if o.rateLimit != 0 {
		lim = budget.NewLimiter(e.rdb, o.rateLimit)
	} else {
		lim = budget.New(e.rdb, budget.Config{}) // production's shares
	}
	zd, err := zendesk.New(zendesk.Config{BaseURL: e.fake.URL(), Email: e.fake.Email(), APIToken: e.fake.APIToken(),
		Timeout: o.zdTimeout, OnResponse: lim.Observe})
	if err != nil {
		tb.Fatalf("zendesk.New: %v", err)
	}
	e.zd = zd
	cfg := fastConfig(o.cfg)
	r, err := relay.New(cfg, relay.Deps{Redis: e.rdb, Asynq: e.opt, Zendesk: zd, Limiter: lim, Log: testLogger(tb), Metrics: e.reg,
		Outcomes: o.outcomes})
	if err != nil {
		tb.Fatalf("relay.New: %v", err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	if !o.noWorkers {
		startWorkers(tb, e.opt, r, o.workers, testRetryMaxDelay)
	}
	return r
}

func startWorkers(tb testing.TB, opt asynq.RedisConnOpt, r *relay.Relay, n int, maxDelay time.Duration) *asynq.Server {
	tb.Helper()
	srv := queues.NewServer(opt, queues.ServerConfig{
		Concurrency:     n,
		Policy:          queues.Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: maxDelay},
		ShutdownTimeout: 5 * time.Second,
		PollInterval:    100 * time.Millisecond,
	}, testLogger(tb))
	mux := asynq.NewServeMux()
	r.Register(mux)
	if err := srv.Start(mux); err != nil {
		tb.Fatalf("asynq server: %v", err)
	}
	tb.Cleanup(srv.Shutdown)
	return srv
}

func seq(n int64) *int64 { return &n }

func msg(conv string, i int) relay.Message {
	return relay.Message{
		ID:             fmt.Sprintf("%s-m%02d", conv, i),
		ConversationID: conv,
		Sequence:       seq(int64(i)),
		Author:         relay.Author{Name: "Ann Lee", Email: "ann+" + conv + "@example.com"},
		Body:           fmt.Sprintf("%s message %02d", conv, i),
	}
}

func mustEnqueue(tb testing.TB, r *relay.Relay, m relay.Message) {
	tb.Helper()
	if _, created, err := r.Enqueue(context.Background(), m); err != nil || !created {
		tb.Fatalf("Enqueue %s: created=%v err=%v", m.ID, created, err)
	}
}

// waitStatus waits until every message has the given status.
func waitStatus(tb testing.TB, r *relay.Relay, ids []string, status string, d time.Duration) {
	tb.Helper()
	left := slices.Clone(ids)
	testutil.WaitFor(tb, d, func() bool {
		var still []string
		for _, id := range left {
			st, err := r.Status(context.Background(), id)
			if err != nil || st.Status != status {
				still = append(still, id)
			}
		}
		left = still
		return len(left) == 0
	}, fmt.Sprintf("%d messages %s", len(ids), status))
}

// conversationBodies returns, per external_id (conversation), the bodies of
// every comment on its tickets in Zendesk order (ticket by ticket).
func conversationBodies(fake *zendesktest.Server) map[string][]string {
	tickets := fake.Tickets()
	sort.Slice(tickets, func(i, j int) bool { return tickets[i].ID < tickets[j].ID })
	out := map[string][]string{}
	for _, t := range tickets {
		for _, c := range fake.Comments(t.ID) {
			out[t.ExternalID] = append(out[t.ExternalID], c.Body)
		}
	}
	return out
}

// checkExactlyOnce asserts that every conversation has exactly one ticket
// (tickets > 1 only when allowed) holding exactly want[conv], in order.
func checkExactlyOnce(tb testing.TB, fake *zendesktest.Server, want map[string][]string) {
	tb.Helper()
	perConv := map[string]int{}
	for _, t := range fake.Tickets() {
		perConv[t.ExternalID]++
	}
	got := conversationBodies(fake)
	for conv, bodies := range want {
		if perConv[conv] != 1 {
			tb.Errorf("conversation %s: %d tickets, want 1", conv, perConv[conv])
		}
		if !slices.Equal(got[conv], bodies) {
			tb.Errorf("conversation %s comments:\n got %q\nwant %q", conv, got[conv], bodies)
		}
	}
	if len(perConv) != len(want) {
		tb.Errorf("tickets for %d conversations, want %d", len(perConv), len(want))
	}
}

func wantBodies(convs, msgs int, prefix string) (map[string][]string, []relay.Message) {
	want := map[string][]string{}
	var all []relay.Message
	for c := range convs {
		conv := fmt.Sprintf("%s%02d", prefix, c)
		for i := 1; i <= msgs; i++ {
			m := msg(conv, i)
			want[conv] = append(want[conv], m.Body)
			all = append(all, m)
		}
	}
	return want, all
}

func ids(ms []relay.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
