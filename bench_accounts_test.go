package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// BenchmarkIdleAccounts: 1,000 configured accounts that receive no
// message: the memory serve's wiring holds per account (the heap after a
// GC), and the Redis keys each one keeps after a reconcile run (its
// checkpoints, last run, guardian state, budget). The Zendesk requests an
// idle account costs an hour are reconcile's BenchmarkIdleAccount.
func BenchmarkIdleAccounts(b *testing.B) {
	const n = 1000
	db := redistest.New(b)
	zd := zendesktest.NewServer(b, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-token-idle-SECRET", RateLimit: 1 << 30, ExportLimit: 1 << 30})
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	b.Cleanup(sink.Close)
	v := defaultValues()
	v["DESKRELAY_REDIS_URL"] = db.URL()
	v["DESKRELAY_SINK_URL"] = sink.URL
	v["DESKRELAY_SINK_SECRET"] = "whsec_c2VjcmV0LXNpbmstU0VDUkVUNA=="
	v["DESKRELAY_SPOOL_DIR"] = b.TempDir()
	v["DESKRELAY_RECONCILE_INTERVAL"] = "5m"
	cfg, err := parseConfig(v, needs{})
	if err != nil {
		b.Fatal(err)
	}
	cfg.accounts = nil
	for i := range n {
		cfg.accounts = append(cfg.accounts, accountConfig{
			name:      fmt.Sprintf("idle-%04d", i),
			zendesk:   zendesk.Config{BaseURL: zd.URL(), Email: "agent@example.com", APIToken: "zd-token-idle-SECRET", UserAgent: userAgent()},
			rateLimit: cfg.single.rateLimit, updateRateLimit: cfg.single.updateRateLimit,
			fingerprint: fmt.Sprint(i),
		})
	}
	ctx := context.Background()
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		p, err := build(ctx, cfg, zerolog.Nop(), prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		keysBefore := countKeys(b, db, "deskrelay:{idle-*")
		for _, a := range p.accountSet().list {
			if _, err := a.reconciler.RunOnce(ctx); err != nil {
				b.Fatalf("%s: %v", a.name(), err)
			}
		}
		keysAfter := countKeys(b, db, "deskrelay:{idle-*")
		t0 := time.Now()
		if _, failed := p.accountStates(ctx); failed {
			b.Fatal("accountStates failed")
		}
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), "ms/status-summary-1000-accounts")
		c := newQueueCollector(p.insp, (&daemon{parts: p}).outboundStates, zerolog.Nop())
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		t0 = time.Now()
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), "ms/metrics-scrape-1000-accounts")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/mem-per-account")
		b.ReportMetric(float64(keysAfter)/n, "keys/idle-account")
		b.Logf("%d accounts: heap %.1f MB after wiring; Redis keys %d after wiring, %d after one reconcile run each",
			n, float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), keysBefore, keysAfter)
		p.close()
	}
}

// countKeys counts the keys matching pattern in db.
func countKeys(tb testing.TB, db *redistest.DB, pattern string) int {
	tb.Helper()
	var n int
	iter := db.Client.Scan(context.Background(), 0, pattern, 1000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	if err := iter.Err(); err != nil {
		tb.Fatal(err)
	}
	return n
}
