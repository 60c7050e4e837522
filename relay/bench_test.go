package relay_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/relay"
)

// BenchmarkThroughput compares messages/s through the relay (intake,
// ordering, lock, limiter, exactly-once bookkeeping, the zero-latency fake
// Zendesk) with bare asynq no-op tasks on the same Redis and the same
// number of workers.
//
//	go test -run '^$' -bench Throughput -benchtime 1x ./relay/
func BenchmarkThroughput(b *testing.B) {
	const n, convs, workers = 1200, 120, 20
	for b.Loop() {
		relayRate := relayThroughput(b, n, convs, workers)
		asynqRate := asynqThroughput(b, n, workers)
		b.ReportMetric(relayRate, "relay_msgs/s")
		b.ReportMetric(asynqRate, "asynq_tasks/s")
		b.ReportMetric(relayRate/asynqRate, "ratio")
	}
}

func relayThroughput(b *testing.B, n, convs, workers int) float64 {
	e := newEnv(b, envOptions{rateLimit: 10_000_000, workers: workers, noWorkers: true})
	var all []relay.Message
	for i := range n {
		all = append(all, msg(fmt.Sprintf("bench%03d", i%convs), i/convs+1))
	}
	startWorkers(b, e.opt, e.relay, workers, time.Second)
	start := time.Now()
	parallel(workers, len(all), func(i int) { mustEnqueue(b, e.relay, all[i]) })
	// Count deliveries in process (the metric), not by asking Redis for
	// every message, so that the measuring does not load Redis.
	testutil.WaitFor(b, 5*time.Minute, func() bool {
		return deliveredMetric(b, e) >= float64(n)
	}, "every message delivered")
	elapsed := time.Since(start)
	waitStatus(b, e.relay, ids(all), "delivered", time.Minute)
	return float64(n) / elapsed.Seconds()
}

func asynqThroughput(b *testing.B, n, workers int) float64 {
	e := newEnv(b, envOptions{noWorkers: true})
	client := asynq.NewClient(e.opt)
	defer client.Close()
	var done atomic.Int64
	finished := make(chan struct{})
	srv := queues.NewServer(e.opt, queues.ServerConfig{Concurrency: workers, PollInterval: 100 * time.Millisecond}, testLogger(b))
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:noop", func(context.Context, *asynq.Task) error {
		if done.Add(1) == int64(n) {
			close(finished)
		}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	start := time.Now()
	parallel(workers, n, func(i int) {
		if _, err := client.Enqueue(asynq.NewTask("bench:noop", nil), asynq.Queue(queues.Outbound),
			asynq.TaskID(fmt.Sprintf("noop-%d", i)), asynq.MaxRetry(queues.MaxRetry)); err != nil {
			b.Error(err)
		}
	})
	select {
	case <-finished:
	case <-time.After(5 * time.Minute):
		b.Fatal("no-op tasks did not finish")
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkDrainAfterOutage measures how long a backlog of n messages
// takes to reach Zendesk once it answers again, against the floor set by
// the rate limit (n / rate; the limiter's burst of a tenth of a minute's
// budget lets the first part through at once, so the ratio can be below 1).
//
//	go test -run '^$' -bench DrainAfterOutage -benchtime 1x ./relay/
func BenchmarkDrainAfterOutage(b *testing.B) {
	const n, convs, perMinute = 400, 40, 2400
	for b.Loop() {
		e := newEnv(b, envOptions{rateLimit: perMinute, workers: 20})
		e.fake.Down()
		var all []relay.Message
		for i := range n {
			all = append(all, msg(fmt.Sprintf("drain%03d", i%convs), i/convs+1))
		}
		enqueueAll(b, e.relay, all)
		testutil.WaitFor(b, time.Minute, func() bool {
			rep, err := e.relay.Report(context.Background())
			return err == nil && rep.Gate.State == relay.GateClosed
		}, "the gate to close")
		// Let the limiter's budget refill, as it would during a real outage.
		time.Sleep(6 * time.Second)
		up := time.Now()
		e.fake.Up()
		waitStatus(b, e.relay, ids(all), "delivered", 10*time.Minute)
		drain := time.Since(up)
		ideal := time.Duration(float64(n) / float64(perMinute) * float64(time.Minute))
		b.ReportMetric(drain.Seconds(), "drain_s")
		b.ReportMetric(ideal.Seconds(), "n/rate_s")
		b.ReportMetric(drain.Seconds()/ideal.Seconds(), "ratio")
		// The floor with the limiter's burst (a tenth of a minute's budget).
		floor := time.Duration(float64(n-perMinute/10) / float64(perMinute) * float64(time.Minute))
		b.ReportMetric(drain.Seconds()/floor.Seconds(), "ratio_vs_burst_floor")
	}
}

// deliveredMetric is the env's delivered messages by the metric (0: none).
func deliveredMetric(tb testing.TB, e *env) float64 {
	return max(deliveredOf(tb, e.reg, keys.DefaultAccount), 0)
}

// parallel runs f(0..n-1) on g goroutines (the platform posting at once).
func parallel(g, n int, f func(i int)) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		}()
	}
	wg.Wait()
}
