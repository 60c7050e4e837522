package relay_test

import (
	"context"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/relay"
)

// TestGateOpensWhileParking: the outage gate opens while a task is parking
// (it read "closed" and is about to return to asynq). The first release
// finds nothing (the task is still running); the task must not wait its
// whole park time (20s here) all the same.
func TestGateOpensWhileParking(t *testing.T) {
	e := newEnv(t, envOptions{noWorkers: true})
	ctx := context.Background()
	// Enqueued while the gate is open (a message of a closed gate parks at
	// intake and never reaches the gate), then the gate closes.
	m := msg("parking", 1)
	mustEnqueue(t, e.relay, m)
	if err := e.rdb.HSet(ctx, keys.Default.OutboundGate(), "state", relay.GateClosed, "failures", 5).Err(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	opened := make(chan time.Time, 1)
	e.relay.SetParkingHook(func(ctx context.Context) {
		once.Do(func() {
			e.relay.GateSuccess(ctx) // the probe answered: the gate opens, releasing nothing
			opened <- time.Now()
		})
	})
	startWorkers(t, e.opt, e.relay, 2, testRetryMaxDelay)
	var at time.Time
	select {
	case at = <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("the task never parked")
	}
	// Well before the park time: released again, not left to its timer
	// (how soon is BenchmarkFirstDeliveryAfterRecovery's to measure).
	waitStatus(t, e.relay, []string{m.ID}, "delivered", 15*time.Second)
	if lag := time.Since(at); lag > 10*time.Second {
		t.Errorf("delivered %s after the gate opened, want well before its 20s park time", lag)
	}
}

// BenchmarkFirstDeliveryAfterRecovery measures, with serve's defaults
// (asynq poll interval 1s, gate probe interval 1s, park time 10m), the time
// from Zendesk answering again to the first message written after an
// outage that closed the gate (recovering at a random moment between two
// probes), and from the probe's first success to that delivery. The goal
// is at most 2s: a probe interval, and the probe delivers the oldest
// parked message itself.
//
//	go test -run '^$' -bench FirstDeliveryAfterRecovery -benchtime 3x ./relay/
func BenchmarkFirstDeliveryAfterRecovery(b *testing.B) {
	var sum, sumProbe, worst time.Duration
	runs := 0
	for b.Loop() {
		total, afterProbe := firstDeliveryAfterRecovery(b)
		sum, sumProbe, worst, runs = sum+total, sumProbe+afterProbe, max(worst, total), runs+1
	}
	b.ReportMetric(sum.Seconds()/float64(runs), "s/first-delivery-after-recovery")
	b.ReportMetric(worst.Seconds(), "s/worst-first-delivery")
	b.ReportMetric(sumProbe.Seconds()/float64(runs), "s/after-probe-ok")
}

func firstDeliveryAfterRecovery(b *testing.B) (total, afterProbe time.Duration) {
	def := relay.Config{}.Defaults()
	e := newEnv(b, envOptions{noWorkers: true, cfg: relay.Config{GateProbeInterval: def.GateProbeInterval, GateParkTime: def.GateParkTime}})
	srv := queues.NewServer(e.opt, queues.ServerConfig{Concurrency: 20, ShutdownTimeout: 5 * time.Second,
		Policy: queues.Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}}, testLogger(b))
	mux := asynq.NewServeMux()
	e.relay.Register(mux)
	if err := srv.Start(mux); err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	e.fake.Down()
	_, all := wantBodies(5, 4, "recovery")
	enqueueAll(b, e.relay, all)
	ctx := context.Background()
	testutil.WaitFor(b, 30*time.Second, func() bool {
		rep, err := e.relay.Report(ctx)
		return err == nil && rep.Gate.State == relay.GateClosed
	}, "the outage gate to close")
	// Let the backlog park and a probe or two fail.
	testutil.WaitFor(b, 30*time.Second, func() bool {
		return e.fake.CountRequests("GET", "/api/v2/users/me") >= 2
	}, "two probes")
	// Recover at a random moment between two probes.
	time.Sleep(time.Duration(rand.Int64N(int64(def.GateProbeInterval))))
	up := time.Now()
	e.fake.Up()
	var first time.Time
	testutil.WaitFor(b, 90*time.Second, func() bool {
		for _, r := range e.fake.Requests() {
			if isWrite(r) && r.Status < 300 && !r.Time.Before(up) {
				first = r.Time
				return true
			}
		}
		return false
	}, "the first delivery after recovery")
	if os.Getenv("DBG") != "" {
		for _, r := range e.fake.Requests() {
			b.Logf("%8.3f %s %s %d", r.Time.Sub(up).Seconds(), r.Method, r.Path, r.Status)
		}
	}
	var probed time.Time
	for _, r := range e.fake.Requests() {
		if r.Path == "/api/v2/users/me" && r.Status == 200 {
			probed = r.Time
			break
		}
	}
	return first.Sub(up), first.Sub(probed)
}
