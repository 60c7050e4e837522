package reconcile

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	zdbudget "github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// concurrency counts runs inside Zendesk's export at the same time.
type concurrency struct {
	active, peak, calls atomic.Int32
	gate                chan struct{} // when set, calls wait for it to close
}

func (c *concurrency) wrap(zc *zendesk.Client) *gatedZendesk {
	return &gatedZendesk{Client: zc,
		before: func(context.Context) {
			n := c.active.Add(1)
			c.calls.Add(1)
			for {
				p := c.peak.Load()
				if n <= p || c.peak.CompareAndSwap(p, n) {
					break
				}
			}
			if c.gate != nil {
				<-c.gate
			}
		},
		after: func(context.Context, *zendesk.TicketEventsPage) { c.active.Add(-1) },
	}
}

func TestSchedule(t *testing.T) {
	t.Run("TwoReplicasRunOneAtATime", func(t *testing.T) {
		e := newEnv(t, zendesktest.Config{})
		e.zd.SetLatency(200 * time.Millisecond)
		c := concurrency{gate: make(chan struct{})}
		var rs []*Reconciler
		for range 2 {
			rs = append(rs, e.reconciler(t, Config{Interval: time.Second, LeaseTTL: time.Second},
				func(d *Deps) { d.Zendesk = c.wrap(e.zc) }))
		}

		// both replicas start a run at once: one takes the lease and is
		// held inside Zendesk's export until the other has given up
		errs := make(chan error, 2)
		for _, r := range rs {
			go func() { _, err := r.RunOnce(context.Background()); errs <- err }()
		}
		if err := <-errs; !errors.Is(err, ErrBusy) {
			t.Fatalf("first run to return: %v, want ErrBusy", err)
		}
		close(c.gate)
		if err := <-errs; err != nil {
			t.Fatalf("the run holding the lease: %v", err)
		}
		c.gate = nil

		// both replicas schedule every second on their own asynq server
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var sched sync.WaitGroup
		for _, r := range rs {
			srv := queues.NewServer(e.db.AsynqOpt(), queues.ServerConfig{Concurrency: 2, PollInterval: 50 * time.Millisecond}, testLogger(t))
			mux := asynq.NewServeMux()
			r.Register(mux)
			if err := srv.Start(mux); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Shutdown)
			sched.Go(func() { _ = r.Schedule(ctx) })
		}
		started := time.Now()
		before := c.calls.Load()
		testutil.WaitFor(t, 15*time.Second, func() bool { return c.calls.Load()-before >= 3 }, "three scheduled runs")
		cancel()
		sched.Wait()
		slots := int32(time.Since(started)/time.Second) + 2
		if runs := c.calls.Load() - before; runs > slots {
			t.Errorf("%d runs in %d interval slots: the schedule was not deduplicated", runs, slots)
		}
		if p := c.peak.Load(); p != 1 {
			t.Errorf("%d runs overlapped", p)
		}
	})

	t.Run("CrashMidRunLeavesTheCheckpointAndTheNextRunPicksUp", func(t *testing.T) {
		ctx := context.Background()
		e := newEnv(t, zendesktest.Config{ExportPageSize: 5})
		r := e.reconciler(t, Config{Interval: time.Minute})
		if _, err := r.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		cp0, _, _ := r.Checkpoint(ctx)
		e.clock.Advance(2 * time.Minute)
		id := e.managedTicket(t)
		var want []string
		for range 20 {
			e.clock.Advance(time.Second)
			want = append(want, events.CommentEventID(e.zd.AgentComment(id, "reply", true)))
		}
		e.clock.Advance(2 * time.Minute)

		runCtx, crash := context.WithCancel(ctx)
		var calls atomic.Int32
		crashing := e.reconciler(t, Config{Interval: time.Minute}, func(d *Deps) {
			d.Zendesk = &gatedZendesk{Client: e.zc, before: func(context.Context) {
				if calls.Add(1) == 2 {
					crash() // the process dies while asking for the second page
				}
			}}
		})
		rep, err := crashing.RunOnce(runCtx)
		if err == nil || rep.Complete || rep.Pages != 1 {
			t.Fatalf("crashed run: %+v, %v", rep, err)
		}
		cp1, _, _ := r.Checkpoint(ctx)
		if !cp1.After(cp0) || !cp1.Before(rep.Window.Until) {
			t.Fatalf("checkpoint after the crash %v; before %v, window end %v", cp1, cp0, rep.Window.Until)
		}
		if n := len(e.sink(t)); n == 0 || n >= 20 {
			t.Fatalf("first page published %d events", n)
		}

		// a crash that leaves the lease behind: the next run waits for it to expire
		if err := e.rdb.Set(ctx, keys.Default.ReconcileLease(), "dead-replica", DefaultLeaseTTL).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.RunOnce(ctx); !errors.Is(err, ErrBusy) {
			t.Fatalf("run while a dead replica's lease lives: %v", err)
		}
		// its TTL runs out (shortened here instead of waiting 30s)
		if err := e.rdb.PExpire(ctx, keys.Default.ReconcileLease(), 20*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 5*time.Second, func() bool {
			n, _ := e.rdb.Exists(ctx, keys.Default.ReconcileLease()).Result()
			return n == 0
		}, "the dead lease to expire")
		rep, err = r.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Window.Since.Equal(cp1) {
			t.Errorf("next run started at %v, want the checkpoint %v", rep.Window.Since, cp1)
		}
		if got := e.sink(t); !sameSet(got, want) {
			t.Errorf("sink %d events, want the 20", len(got))
		}
	})
}

func TestRateLimits(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, zendesktest.Config{ExportLimit: 3, Window: time.Second, ExportPageSize: 2})
	r := e.reconciler(t, Config{ExportLimit: 3, ExportWindow: time.Second},
		func(d *Deps) { d.Limiter = zdbudget.NewLimiter(e.rdb, 6000) })
	id := e.managedTicket(t)
	var want []string
	for range 12 {
		e.clock.Advance(time.Second)
		want = append(want, events.CommentEventID(e.zd.AgentComment(id, "reply", true)))
	}
	e.clock.Advance(2 * time.Minute)
	w := Window{Since: e.clock.Now().Add(-time.Hour)}

	t.Run("ExportLimitIsNeverExceeded", func(t *testing.T) {
		rep, err := r.Backfill(ctx, w, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range e.zd.Requests() {
			if q.Status == 429 {
				t.Fatalf("the fake answered 429 to %s %s", q.Method, q.Path)
			}
		}
		if rep.Pages < 6 || rep.RateLimitWait <= 0 || rep.RateLimited != 0 || !sameSet(e.sink(t), want) {
			t.Fatalf("report %+v; sink %d", rep, len(e.sink(t)))
		}
		// pages of 2 repeat their last second on the next page: each export
		// item counts once (12 replies and the ticket's creation)
		if rep.TicketEvents != 13 || rep.EventsFound != 13 {
			t.Errorf("ticket events %d, events found %d; want 13 each", rep.TicketEvents, rep.EventsFound)
		}
	})

	t.Run("A429IsWaitedOut", func(t *testing.T) {
		e.zd.FailNext(1, 429, zendesktest.RetryAfter(time.Second), zendesktest.Matching("GET", "/api/v2/incremental"))
		e.zd.FailNext(2, 503, zendesktest.Matching("GET", "/api/v2/incremental"))
		rep, err := r.Backfill(ctx, w, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.RateLimited != 1 || rep.RateLimitWait < time.Second || !rep.Complete || rep.AlreadyDelivered != 12 {
			t.Fatalf("report %+v", rep)
		}
	})
}
