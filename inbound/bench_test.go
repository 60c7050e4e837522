package inbound_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/zendesk"
)

// BenchmarkWebhookAck measures how fast the receiver answers verified
// webhooks at a sustained, open-loop rate on loopback (the ack only: the
// workers are not running). Settings:
//
//	DESKRELAY_BENCH_RATE      requests per second (default 500)
//	DESKRELAY_BENCH_DURATION  how long (default 3s; the figure: 60s)
//
// Run: DESKRELAY_BENCH_DURATION=60s go test -run '^$' -bench WebhookAck -benchtime 1x ./inbound
//
// Sub-benchmarks: Redis (the normal path: an asynq task) and Spool (Redis
// unreachable: a file fsynced per request).
func BenchmarkWebhookAck(b *testing.B) {
	rate := envInt(b, "DESKRELAY_BENCH_RATE", 500)
	dur := envDuration(b, "DESKRELAY_BENCH_DURATION", 3*time.Second)
	b.Run("Redis", func(b *testing.B) {
		h := newHarness(b, harnessOptions{noWorkers: true})
		for b.Loop() {
			ackLoad(b, h, rate, dur)
		}
	})
	// Redis unreachable: every request is fsynced into the spool
	b.Run("Spool", func(b *testing.B) {
		srv := redistest.StartServer(b, redistest.ServerOptions{})
		h := newHarness(b, harnessOptions{server: srv, noWorkers: true})
		h.stopRun() // no mover: keep spooling
		srv.Kill(b)
		for b.Loop() {
			ackLoad(b, h, rate, dur)
		}
	})
}

// ackLoad sends signed webhooks at rate for dur, open loop, and reports
// the answer latencies and errors.
func ackLoad(b *testing.B, h *harness, rate int, dur time.Duration) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512}, Timeout: 10 * time.Second}
	url := h.api.URL + "/v1/zendesk/webhook"
	total := int(float64(rate) * dur.Seconds())
	lat := make([]time.Duration, total)
	var mu sync.Mutex
	errs := 0
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d) // pacing the load generator, not waiting for work
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := commentBody(4242, int64(1_000_000+i), "conv_bench", true, true, time.Now())
			ts := time.Now().UTC().Format(time.RFC3339)
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set(zendesk.HeaderSignatureTimestamp, ts)
			req.Header.Set(zendesk.HeaderSignature, zendesk.Sign(webhookSecret, ts, body))
			req.Header.Set("X-Zendesk-Webhook-Invocation-Id", fmt.Sprintf("bench-%d-%d", start.UnixNano(), i))
			t0 := time.Now()
			resp, err := client.Do(req)
			d := time.Since(t0)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			mu.Lock()
			lat[i] = d
			if !ok {
				errs++
			}
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(p(0.50), "p50_ms")
	b.ReportMetric(p(0.99), "p99_ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max_ms")
	b.ReportMetric(float64(errs), "errors")
	b.ReportMetric(float64(total)/elapsed.Seconds(), "req/s")
	b.Logf("%d requests at %d/s over %s: p50 %.2fms p99 %.2fms max %.2fms errors %d",
		total, rate, elapsed.Round(time.Millisecond), p(0.5), p(0.99), float64(lat[len(lat)-1])/1e6, errs)
}

func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func envDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		tb.Fatalf("%s=%q: want a duration", name, v)
	}
	return d
}
