package relay_test

import (
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/relay"
)

// BenchmarkIsolation measures how long a new message of account beta takes
// to reach its Zendesk while account alpha has 10,000 messages queued:
// during alpha's outage (its backlog parked), and while alpha's backlog
// drains after it recovered (at 6,000 a minute, its limiter's rate). Both
// run on serve's asynq defaults (poll interval 1s, 20 workers). The goal
// is at most 2s each.
//
//	go test -run '^$' -bench Isolation -benchtime 1x -timeout 30m ./relay/
func BenchmarkIsolation(b *testing.B) {
	const n = 10000
	for b.Loop() {
		a := newAccounts(b, 0, accountOptions{name: "alpha", perMinute: 6000}, accountOptions{name: keys.DefaultAccount, perMinute: 6000})
		a.startWorkers(20, time.Second)
		alpha, beta := a.relays["alpha"], a.relays[keys.DefaultAccount]
		a.fakes["alpha"].Down()
		backlog := backlogOf("a", n)
		parallel(20, n, func(i int) { mustEnqueue(b, alpha, backlog[i]) })
		b1 := msg("b", 1)
		outage := latency(b, beta, b1)
		testutil.WaitFor(b, 5*time.Minute, func() bool { return parked(b, alpha) >= n }, "alpha's backlog parked")
		b2 := msg("b", 2)
		outageParked := latency(b, beta, b2)

		a.fakes["alpha"].Up()
		testutil.WaitFor(b, time.Minute, func() bool { return deliveredOf(b, a.reg, "alpha") > 0 }, "alpha's drain to start")
		time.Sleep(2 * time.Second) // well into the drain
		b3 := msg("b", 3)
		drain := latency(b, beta, b3)
		left := float64(n) - deliveredOf(b, a.reg, "alpha")
		if left <= 0 {
			b.Logf("alpha's backlog had drained before beta's message: the drain figure is not under load")
		}
		b.ReportMetric(left, "alpha-messages-left-at-drain-measure")
		b.ReportMetric(max(outage, outageParked).Seconds(), "s/other-account-during-outage")
		b.ReportMetric(drain.Seconds(), "s/other-account-during-drain")
		b.ReportMetric(outage.Seconds(), "s/right-behind-the-backlog")
	}
}

// latency enqueues m and returns how long it took to be delivered (looked
// at every 10ms).
func latency(tb testing.TB, r *relay.Relay, m relay.Message) time.Duration {
	tb.Helper()
	start := time.Now()
	mustEnqueue(tb, r, m)
	waitStatus(tb, r, []string{m.ID}, relay.StateDelivered, 2*time.Minute)
	return time.Since(start)
}
