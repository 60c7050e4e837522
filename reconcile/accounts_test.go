package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	redislease "github.com/deskrelay/deskrelay/internal/lease"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/internal/tickets"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// acctPublisher is an account's Publisher: the webhook path's
// sink.Publisher with the account's ticket record, recording every event it
// enqueued.
type acctPublisher struct {
	*sink.Publisher
	mu  sync.Mutex
	got map[string]events.Event // by event id
}

func (p *acctPublisher) Publish(ctx context.Context, ev events.Event) (events.Outcome, error) {
	out, err := p.Publisher.Publish(ctx, ev)
	if err == nil && out.Result == events.ResultEnqueued {
		p.mu.Lock()
		p.got[out.Event.ID] = out.Event // as published: the account's id
		p.mu.Unlock()
	}
	return out, err
}

func (p *acctPublisher) published() map[string]events.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]events.Event, len(p.got))
	for k, v := range p.got {
		out[k] = v
	}
	return out
}

// account is one Zendesk account on the env's Redis: a fake Zendesk of its
// own, its ticket record and publisher, and its Reconciler.
type account struct {
	name    string
	zd      *zendesktest.Server
	zc      *zendesk.Client
	tickets *tickets.Tickets
	pub     *acctPublisher
	r       *Reconciler
	nconv   int
}

// account adds an account to env. Each account's fake first spends comment
// ids on a ticket deskrelay does not manage, so that the accounts' comment
// ids differ too, and a reconciler reading the wrong Zendesk would show.
func (e *env) account(tb testing.TB, name string, cfg Config) *account {
	tb.Helper()
	e.naccounts++
	a := &account{name: name}
	a.zd = zendesktest.NewServer(tb, zendesktest.Config{Now: e.clock.Now, ExportLimit: 100000, RateLimit: 1000000, Logf: func(string, ...any) {}})
	zc, err := zendesk.New(zendesk.Config{BaseURL: a.zd.URL(), Email: a.zd.Email(), APIToken: a.zd.APIToken()})
	if err != nil {
		tb.Fatal(err)
	}
	a.zc = zc
	a.tickets = tickets.New(e.rdb).WithSpace(keys.For(name))
	a.pub = &acctPublisher{Publisher: sink.NewPublisher(e.rdb, a.tickets, sink.PublisherConfig{Now: e.clock.Now, Space: keys.For(name)}), got: map[string]events.Event{}}
	other := a.zd.CreateTicket(zendesk.NewTicket{Subject: "other", Comment: zendesk.CommentInput{Body: "not ours", Public: true},
		Requester: &zendesk.Requester{Name: "Bob", Email: "bob@example.com"}})
	for range 20 * e.naccounts {
		a.zd.AgentComment(other, "not ours", true)
	}
	a.r = e.reconciler(tb, cfg, func(d *Deps) {
		d.Space, d.Zendesk, d.Publisher, d.Tickets = keys.For(name), zc, a.pub, a.tickets
	})
	return a
}

// managedTicket creates a ticket in the account's Zendesk and records it
// as deskrelay's, in the account's ticket record.
func (a *account) managedTicket(tb testing.TB) int64 {
	tb.Helper()
	a.nconv++
	conv := a.name + "_conv_" + strconv.Itoa(a.nconv)
	id := a.zd.CreateTicket(zendesk.NewTicket{Subject: "help", Comment: zendesk.CommentInput{Body: "first", Public: true},
		Requester: &zendesk.Requester{Name: "Ann", Email: "ann" + strconv.Itoa(a.nconv) + "@example.com"}, ExternalID: conv})
	ctx := context.Background()
	if err := a.tickets.Link(ctx, conv, id); err != nil {
		tb.Fatal(err)
	}
	if err := a.tickets.RememberOwnComment(ctx, a.zd.Comments(id)[0].ID); err != nil {
		tb.Fatal(err)
	}
	return id
}

// replies adds n agent replies to the account's ticket, a second apart,
// and returns their event ids.
func (a *account) replies(e *env, ticket int64, n int) []string {
	var ids []string
	for range n {
		e.clock.Advance(time.Second)
		ids = append(ids, events.AccountEventID(a.name, events.CommentEventID(a.zd.AgentComment(ticket, "reply from "+a.name, true))))
	}
	return ids
}

func TestAccounts(t *testing.T) {
	t.Run("EachBackfillsOnlyItsOwnZendeskUnderItsOwnCheckpoint", func(t *testing.T) {
		ctx := context.Background()
		e := newEnv(t, zendesktest.Config{})
		cfg := Config{Interval: time.Minute}
		a, b := e.account(t, "acme", cfg), e.account(t, "globex", cfg)
		ta, tb := a.managedTicket(t), b.managedTicket(t)
		wantA, wantB := a.replies(e, ta, 5), b.replies(e, tb, 3)
		e.clock.Advance(3 * time.Minute)

		for _, x := range []*account{a, b} {
			rep, err := x.r.RunOnce(ctx)
			if err != nil {
				t.Fatalf("%s: %v", x.name, err)
			}
			if rep.Account != x.name {
				t.Errorf("%s's report names account %q", x.name, rep.Account)
			}
		}
		if got := a.pub.published(); !sameSet(got, wantA) {
			t.Errorf("acme published %v, want its own %v", sortedKeys(got), wantA)
		}
		if got := b.pub.published(); !sameSet(got, wantB) {
			t.Errorf("globex published %v, want its own %v", sortedKeys(got), wantB)
		}
		for _, x := range []*account{a, b} {
			if n := x.zd.CountRequests("GET", "/api/v2/incremental"); n == 0 {
				t.Errorf("%s's Zendesk was not read", x.name)
			}
			n, err := e.rdb.Exists(ctx, keys.For(x.name).ReconcileCheckpoint(), keys.For(x.name).ReconcileLastRun()).Result()
			if err != nil || n != 2 {
				t.Errorf("%s's checkpoint and last run in its key space: %d of 2 (%v)", x.name, n, err)
			}
			st, err := x.r.Status(ctx)
			if err != nil || st.Account != x.name || st.LastRun == nil || st.LastRun.Account != x.name {
				t.Errorf("%s's status %+v (%v)", x.name, st, err)
			}
		}
		if n, _ := e.rdb.Exists(ctx, keys.Default.ReconcileCheckpoint(), keys.Default.ReconcileLastRun()).Result(); n != 0 {
			t.Errorf("%d keys written in the default account's key space", n)
		}

		// acme's checkpoint moves on; globex's stays where its run left it
		cpB, _, _ := b.r.Checkpoint(ctx)
		e.clock.Advance(time.Minute)
		wantA = append(wantA, a.replies(e, ta, 2)...)
		e.clock.Advance(3 * time.Minute)
		if _, err := a.r.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		cpA, _, _ := a.r.Checkpoint(ctx)
		if now, _, _ := b.r.Checkpoint(ctx); !now.Equal(cpB) || !cpA.After(cpB) {
			t.Errorf("checkpoints: acme %s, globex %s (was %s)", cpA, now, cpB)
		}
		if got := a.pub.published(); !sameSet(got, wantA) {
			t.Errorf("acme published %v, want %v", sortedKeys(got), wantA)
		}
	})

	t.Run("OneShotBackfillReadsItsAccountAndNamesIt", func(t *testing.T) {
		// `deskrelay reconcile --account NAME|all`: Backfill per account
		ctx := context.Background()
		e := newEnv(t, zendesktest.Config{})
		a, b := e.account(t, "acme", Config{}), e.account(t, "globex", Config{})
		since := e.clock.Now()
		wantA, wantB := a.replies(e, a.managedTicket(t), 4), b.replies(e, b.managedTicket(t), 2)
		e.clock.Advance(3 * time.Minute)
		for _, c := range []struct {
			x    *account
			want []string
		}{{a, wantA}, {b, wantB}} {
			rep, err := c.x.r.Backfill(ctx, Window{Since: since}, Options{})
			if err != nil || rep.Account != c.x.name || rep.Enqueued != len(c.want) {
				t.Errorf("%s's backfill: %+v, %v; want %d enqueued, its name", c.x.name, rep, err, len(c.want))
			}
			var sum strings.Builder
			rep.WriteSummary(&sum)
			if !strings.HasPrefix(sum.String(), "account           "+c.x.name+"\n") {
				t.Errorf("%s's summary does not name it:\n%s", c.x.name, sum.String())
			}
			if got := c.x.pub.published(); !sameSet(got, c.want) {
				t.Errorf("%s published %v, want %v", c.x.name, sortedKeys(got), c.want)
			}
		}
	})

	t.Run("OneAccountsLeaseDoesNotBlockAnother", func(t *testing.T) {
		ctx := context.Background()
		e := newEnv(t, zendesktest.Config{})
		a, b := e.account(t, "acme", Config{Interval: time.Minute}), e.account(t, "globex", Config{Interval: time.Minute})
		// another replica's run of acme holds acme's lease
		l, err := redislease.Acquire(ctx, e.rdb, keys.For("acme").ReconcileLease(), time.Minute)
		if err != nil || l == nil {
			t.Fatalf("take acme's lease: %v", err)
		}
		t.Cleanup(func() { _, _ = l.Release(context.Background()) })
		if _, err := a.r.RunOnce(ctx); !errors.Is(err, ErrBusy) {
			t.Fatalf("acme's run while its lease is held: %v, want ErrBusy", err)
		}
		if _, err := b.r.RunOnce(ctx); err != nil {
			t.Fatalf("globex's run while acme's lease is held: %v", err)
		}
		if st, _ := b.r.Status(ctx); st.Running {
			t.Error("globex reports acme's run as its own")
		}
		if st, _ := a.r.Status(ctx); !st.Running {
			t.Error("acme does not report its running run")
		}
	})

	t.Run("AccountsAreGivenTheirOwnMetricSeries", func(t *testing.T) {
		ctx := context.Background()
		e := newEnv(t, zendesktest.Config{})
		reg := prometheus.NewRegistry()
		var rs []*Reconciler
		for _, name := range []string{"acme", "globex"} {
			rs = append(rs, e.reconciler(t, Config{Interval: time.Minute}, func(d *Deps) {
				d.Space, d.Metrics = keys.For(name), reg
				d.Tickets = tickets.New(e.rdb).WithSpace(keys.For(name))
			}))
		}
		if _, err := rs[0].RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		m := gather(t, reg)
		if m[`deskrelay_reconcile_runs_total{account="acme",outcome="ok"}`] != 1 || m[`deskrelay_reconcile_runs_total{account="globex",outcome="ok"}`] != 0 {
			t.Errorf("runs by account: %v", m)
		}
		if _, ok := m[`deskrelay_reconcile_checkpoint_age_seconds{account="acme"}`]; !ok {
			t.Errorf("no checkpoint age for acme: %v", m)
		}
		if _, ok := m[`deskrelay_reconcile_checkpoint_age_seconds{account="globex"}`]; !ok {
			t.Errorf("no checkpoint age for globex: %v", m)
		}
		if m[`deskrelay_reconcile_last_success_timestamp_seconds{account="acme"}`] == 0 {
			t.Errorf("no last success for acme: %v", m)
		}
	})
}

func TestSlotOffsetsSpread(t *testing.T) {
	const n, interval, buckets = 1000, 5 * time.Minute, 60
	runs := make([]int, buckets)
	checks := make([]int, buckets)
	for i := range n {
		name := fmt.Sprintf("acct-%d", i)
		off := SlotOffset(name, interval)
		if off < 0 || off >= interval || off != SlotOffset(name, interval) {
			t.Fatalf("SlotOffset(%q) = %s: not a stable offset within the interval", name, off)
		}
		runs[int(off*buckets/interval)]++
		r := &Reconciler{cfg: Config{Interval: interval, BreakerCheckInterval: time.Minute}, space: keys.For(name)}
		bo := r.breakerSlots().offset
		if bo < 0 || bo >= time.Minute {
			t.Fatalf("breaker offset of %q: %s, not within its minute", name, bo)
		}
		checks[int(bo*buckets/time.Minute)]++
	}
	mean := n / buckets
	for what, counts := range map[string][]int{"runs over the interval": runs, "breaker checks over the minute": checks} {
		for i, c := range counts {
			if c > 3*mean {
				t.Errorf("%s: slot %d of %d holds %d of %d names (mean %d)", what, i, buckets, c, n, mean)
			}
		}
	}
}

// dispatcher is what package main builds: one mux per account, each
// Register'ed by the account's Reconciler, and the task's payload picks the
// mux.
func dispatcher(tb testing.TB, rs ...*Reconciler) asynq.Handler {
	tb.Helper()
	muxes := map[string]*asynq.ServeMux{}
	for _, r := range rs {
		mux := asynq.NewServeMux()
		r.Register(mux)
		muxes[r.Account()] = mux
	}
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		acct, err := TaskAccount(t.Payload())
		if err != nil {
			return err
		}
		mux, ok := muxes[acct]
		if !ok {
			return fmt.Errorf("no account %q", acct)
		}
		return mux.ProcessTask(ctx, t)
	})
}

func TestTaskRouting(t *testing.T) {
	t.Run("APayloadWithoutAccountRunsAsDefault", func(t *testing.T) {
		ctx := context.Background()
		e := newEnv(t, zendesktest.Config{})
		def := e.reconciler(t, Config{Interval: time.Minute})
		acme := e.account(t, "acme", Config{Interval: time.Minute})
		h := dispatcher(t, def, acme.r)
		for _, payload := range [][]byte{nil, []byte(`{}`), []byte(`{"account":""}`)} {
			if err := h.ProcessTask(ctx, asynq.NewTask(TaskRun, payload)); err != nil {
				t.Fatalf("payload %q: %v", payload, err)
			}
		}
		if _, ok, _ := def.Checkpoint(ctx); !ok {
			t.Error("a run of the previous release's task did not run for the default account")
		}
		if _, ok, _ := acme.r.Checkpoint(ctx); ok {
			t.Error("a task without account ran for acme")
		}
		if err := h.ProcessTask(ctx, asynq.NewTask(TaskRun, []byte(`{"account":"acme"}`))); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := acme.r.Checkpoint(ctx); !ok {
			t.Error("acme's task did not run for acme")
		}
		// a task that reaches another account's handlers is refused, not run
		mux := asynq.NewServeMux()
		def.Register(mux)
		if err := mux.ProcessTask(ctx, asynq.NewTask(TaskRun, []byte(`{"account":"acme"}`))); !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("acme's task on the default account's mux: %v, want a refusal", err)
		}
		if _, err := TaskAccount([]byte(`[1]`)); err == nil {
			t.Error("a payload that is not an object was read")
		}
	})

	t.Run("ScheduleAllEnqueuesEachAccountsSlotUnderItsOwnID", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		rc := newScriptedReceiver(t)
		hook := e.zd.AddWebhook(rc.srv.URL+WebhookPath, "", zendesktest.EventCommentAdded)
		cfg := Config{Interval: time.Hour, WebhookID: hook}
		def := e.reconciler(t, cfg)
		acme := e.account(t, "acme", Config{Interval: time.Hour})
		srv := queues.NewServer(e.db.AsynqOpt(), queues.ServerConfig{Concurrency: 2, PollInterval: 20 * time.Millisecond}, testLogger(t))
		if err := srv.Start(dispatcher(t, def, acme.r)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ScheduleAll(ctx, []*Reconciler{def, acme.r}) }()
		ran := func(r *Reconciler) func() bool {
			return func() bool { _, ok, _ := r.Checkpoint(context.Background()); return ok }
		}
		testutil.WaitFor(t, 15*time.Second, ran(def), "the default account's scheduled run")
		testutil.WaitFor(t, 15*time.Second, ran(acme.r), "acme's scheduled run")
		testutil.WaitFor(t, 15*time.Second, func() bool {
			st, ok, _ := def.Guardian().LastCheck(context.Background())
			return ok && st.Breaker != nil
		}, "the default account's breaker figures")
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		now := e.clock.Now()
		for _, id := range []string{
			"reconcile:" + strconv.FormatInt(def.runSlots().base(now).Unix(), 10),
			"reconcile{acme}:" + strconv.FormatInt(acme.r.runSlots().base(now).Unix(), 10),
		} {
			if _, err := e.insp.GetTaskInfo(queues.Reconcile, id); err != nil {
				t.Errorf("task %s: %v", id, err)
			}
		}
		if ti, err := e.insp.GetTaskInfo(queues.Reconcile, "reconcile{acme}:"+strconv.FormatInt(acme.r.runSlots().base(now).Unix(), 10)); err == nil {
			if acct, _ := TaskAccount(ti.Payload); acct != "acme" {
				t.Errorf("acme's task payload %s", ti.Payload)
			}
		}
	})
}
