package inbound_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
)

// BenchmarkWebhookDrip opens 300 connections that each announce a 1 MiB
// body with fresh (forged) signature headers and drip it slowly, against
// the receiver on a real HTTP server, and measures how far the process's
// resident memory grows (goal: < 150 MB; before the body budget and read
// deadline, 400 such connections took the daemon from 29 MB to 495 MB).
// Meanwhile a correctly signed webhook must still be accepted (retried
// after a 503 the way Zendesk would).
//
// Run: go test -run '^$' -bench WebhookDrip -benchtime 1x ./inbound
func BenchmarkWebhookDrip(b *testing.B) {
	const conns = 300
	h := newHarness(b, harnessOptions{noWorkers: true})
	for b.Loop() {
		runtime.GC()
		base := vmRSS(b)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range conns {
			wg.Add(1)
			go func() { defer wg.Done(); dripConn(b, h, stop) }()
		}
		peak := base
		var mu sync.Mutex
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if v := vmRSS(b); v > 0 {
					mu.Lock()
					peak = max(peak, v)
					mu.Unlock()
				}
			}
		}()
		time.Sleep(time.Second) // let the drips build up before the real webhook
		attempts, took := realWebhook(b, h)
		time.Sleep(5 * time.Second) // through the read deadline
		close(stop)
		<-sampled
		wg.Wait()
		b.ReportMetric(float64(peak-base)/(1<<20), "rss-growth-MB")
		b.ReportMetric(float64(attempts), "real-webhook-attempts")
		b.ReportMetric(float64(took.Milliseconds()), "real-webhook-ms")
	}
}

// dripConn sends headers for a 1 MiB body, then 16 KiB every 100 ms (1 MiB
// in about 6.4 s) until the server answers or stop.
func dripConn(b *testing.B, h *harness, stop <-chan struct{}) {
	c, err := net.Dial("tcp", strings.TrimPrefix(h.api.URL, "http://"))
	if err != nil {
		b.Error(err)
		return
	}
	defer c.Close()
	stamp := time.Now().UTC().Format(time.RFC3339)
	fmt.Fprintf(c, "POST /v1/zendesk/webhook HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s: %s\r\n%s: %s\r\n\r\n",
		1<<20, zendesk.HeaderSignatureTimestamp, stamp, zendesk.HeaderSignature, zendesk.Sign("forged", stamp, nil))
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			resp.Body.Close()
		}
	}()
	chunk := bytes.Repeat([]byte("x"), 16<<10)
	for {
		select {
		case <-stop:
			return
		case <-answered:
			return
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

// realWebhook posts a correctly signed webhook until it is accepted,
// following Retry-After on 503 (at most 20 s).
func realWebhook(b *testing.B, h *harness) (attempts int, took time.Duration) {
	start := time.Now()
	for time.Since(start) < 20*time.Second {
		attempts++
		r := h.post(statusBody(1001, "PENDING", time.Now()), webhookSecret, time.Now(), "")
		if r.Status == http.StatusOK {
			return attempts, time.Since(start)
		}
		if r.Status != http.StatusServiceUnavailable {
			b.Fatalf("real webhook answered %d %s during the drip", r.Status, r.Body)
		}
		time.Sleep(200 * time.Millisecond) // a quicker Retry-After than Zendesk's, to keep the benchmark short
	}
	b.Fatalf("real webhook not accepted within 20s of drips (%d attempts)", attempts)
	return attempts, time.Since(start)
}

// vmRSS is the process's resident memory in bytes (Linux), 0 elsewhere.
func vmRSS(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	return 0
}
