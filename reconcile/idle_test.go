package reconcile

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// idleAccountHour runs an hour of the scheduled work of an account where
// nothing happens (an active webhook, no events), slot by slot on the
// env's clock, as the schedule enqueues it: a scheduled run every 5
// minutes (DESKRELAY_RECONCILE_INTERVAL's default) and a breaker check
// every minute, each at its slot's start (the account's offsets). It
// returns the Zendesk requests the account's fake got in that hour, by
// method and path (ids replaced by "…").
func idleAccountHour(tb testing.TB) (total int, byPath map[string]int) {
	tb.Helper()
	ctx := context.Background()
	e := newEnv(tb, zendesktest.Config{})
	hook := e.zd.AddWebhook("https://relay.example.com"+WebhookPath, "", zendesktest.EventCommentAdded)
	r := e.reconciler(tb, Config{Interval: 5 * time.Minute, WebhookID: hook, PublicURL: "https://relay.example.com"})
	run := asynq.NewTask(TaskRun, r.payload())
	check := asynq.NewTask(TaskBreakerCheck, r.payload())

	// the first run (no checkpoint yet) and its slot's check happen before
	// the hour counted
	rs, bs := r.runSlots(), r.breakerSlots()
	start := rs.start(e.clock.Now()).Add(rs.every)
	type due struct {
		at   time.Time
		task *asynq.Task
	}
	var todo []due
	for at := start; !at.After(start.Add(time.Hour)); at = at.Add(rs.every) {
		todo = append(todo, due{at, run})
	}
	for at := bs.start(start); !at.After(start.Add(time.Hour)); at = at.Add(bs.every) {
		todo = append(todo, due{at, check})
	}
	sort.SliceStable(todo, func(i, j int) bool { return todo[i].at.Before(todo[j].at) })
	mux := asynq.NewServeMux()
	r.Register(mux)
	counted := false
	for _, d := range todo {
		if !counted && d.at.After(start) {
			e.zd.ResetRequests()
			counted = true
		}
		e.clock.Advance(d.at.Add(100 * time.Millisecond).Sub(e.clock.Now()))
		if err := mux.ProcessTask(ctx, d.task); err != nil {
			tb.Fatalf("%s at %s: %v", d.task.Type(), d.at, err)
		}
	}
	byPath = map[string]int{}
	for _, req := range e.zd.Requests() {
		p := req.Method + " " + strings.ReplaceAll(req.Path, hook, "…")
		byPath[p]++
		total++
	}
	return total, byPath
}

// maxIdleAccountHour bounds the Zendesk requests an idle account costs in
// an hour. Per breaker slot (60 an hour) one invocations listing: the
// early warning's figures, which only Zendesk has (a webhook call that
// never reached deskrelay leaves no trace here). Per scheduled run (12 an
// hour): the webhook (GET), Zendesk's record of calls answered 401 (one
// listing, which a quiet webhook's record fits: evidence.go), the
// invocations since the last run (one listing), the ticket events export
// (one page); the run takes the breaker figures its slot's check read half
// a minute earlier.
const maxIdleAccountHour = 60 + 12*4

func TestIdleAccountCost(t *testing.T) {
	total, byPath := idleAccountHour(t)
	t.Logf("an idle account's hour: %d Zendesk requests %v", total, byPath)
	if total > maxIdleAccountHour {
		t.Errorf("an idle account cost %d Zendesk requests in an hour, want at most %d: %v", total, maxIdleAccountHour, byPath)
	}
	if n := byPath["GET /api/v2/webhooks/…/invocations"]; n < 60 {
		t.Errorf("%d invocation listings in an hour: fewer than one breaker reading a minute", n)
	}
}

// BenchmarkIdleAccount reports the Zendesk requests an account where
// nothing happens costs per hour of schedule (idleAccountHour).
//
//	go test -run '^$' -bench IdleAccount -benchtime 1x ./reconcile/
func BenchmarkIdleAccount(b *testing.B) {
	for b.Loop() {
		total, _ := idleAccountHour(b)
		b.ReportMetric(float64(total), "requests/idle-account-hour")
		b.ReportMetric(0, "ns/op")
	}
}
