package inbound_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk"
)

// drip opens a connection to the harness and sends a webhook request's
// headers (plus extra) and the first bytes of a body of length bytes,
// without the rest. It returns the connection (closed at the test's end).
func (h *harness) drip(length int, extra map[string]string) net.Conn {
	h.t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(h.api.URL, "http://"))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "POST /v1/zendesk/webhook HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", length)
	for k, v := range extra {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n{\"a\":\"")
	if _, err := c.Write([]byte(b.String())); err != nil {
		h.t.Fatal(err)
	}
	return c
}

// answer reads the status and Retry-After of the response on c, waiting
// at most d.
func answer(t *testing.T, c net.Conn, d time.Duration) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer within %s: %v", d, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func signedHeaders(ts time.Time) map[string]string {
	stamp := ts.UTC().Format(time.RFC3339)
	return map[string]string{zendesk.HeaderSignatureTimestamp: stamp, zendesk.HeaderSignature: zendesk.Sign("forged", stamp, nil)}
}

// TestWebhookRefusedBeforeBody: a request without Zendesk's signature
// headers, or with a timestamp outside the window, is answered 401 before
// its body is read, and counted apart from signature failures.
func TestWebhookRefusedBeforeBody(t *testing.T) {
	h := newHarness(t, harnessOptions{noWorkers: true})
	tests := []struct {
		name    string
		headers map[string]string
	}{
		{"NoSignatureHeaders", nil},
		{"TimestampOutsideWindow", signedHeaders(time.Now().Add(-time.Hour))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.drip(1<<20, tt.headers)
			if code, _ := answer(t, c, 2*time.Second); code != http.StatusUnauthorized {
				t.Fatalf("answered %d, want 401", code)
			}
		})
	}
	for _, reason := range []string{"unsigned", "timestamp"} {
		if got := h.metric("deskrelay_inbound_webhooks_rejected_total", reason); got != 1 {
			t.Errorf("rejected{reason=%s} = %v, want 1", reason, got)
		}
	}
	sf, err := inbound.ReadSignatureFailures(context.Background(), h.rdb, keys.Default)
	if err != nil || sf.Run != 0 {
		t.Fatalf("signature failures run %d (%v), want 0: unsigned requests must not count", sf.Run, err)
	}
}

// TestWebhookBodyLimits: a body that does not arrive within the read
// deadline is refused; bodies beyond the memory budget are answered 503
// with Retry-After; a Content-Length over 1 MiB is 413 at once.
func TestWebhookBodyLimits(t *testing.T) {
	h := newHarness(t, harnessOptions{noWorkers: true, cfg: func(c *inbound.Config) {
		c.BodyReadTimeout = 300 * time.Millisecond
		c.BodyBudgetBytes = 64 << 10
	}})
	t.Run("SlowBodyTimesOut", func(t *testing.T) {
		c := h.drip(1000, signedHeaders(time.Now()))
		start := time.Now()
		code, _ := answer(t, c, 3*time.Second)
		if code != http.StatusRequestTimeout || time.Since(start) > 2*time.Second {
			t.Fatalf("a body that never arrives answered %d after %s, want 408 within the deadline", code, time.Since(start))
		}
	})
	t.Run("TooLargeByContentLength", func(t *testing.T) {
		c := h.drip(2<<20, signedHeaders(time.Now()))
		if code, _ := answer(t, c, time.Second); code != http.StatusRequestEntityTooLarge {
			t.Fatalf("answered %d, want 413", code)
		}
	})
	t.Run("BudgetExhausted", func(t *testing.T) {
		// bodies that hold the budget: each sends 40 KiB of its 100 KiB now
		pad := strings.Repeat("x", 40<<10)
		var conns []net.Conn
		for range 2 {
			c := h.drip(100<<10, signedHeaders(time.Now()))
			if _, err := c.Write([]byte(pad)); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		busy := 0
		for _, c := range conns {
			if code, ra := answer(t, c, 2*time.Second); code == http.StatusServiceUnavailable && ra == "10" {
				busy++
			}
		}
		if busy == 0 {
			t.Fatal("no request was answered 503 with Retry-After: 10 beyond the body budget")
		}
	})
}

// TestOtherWebhookNotASignatureFailure: a signed call naming another
// webhook's id is refused but does not count as a signature failure.
func TestOtherWebhookNotASignatureFailure(t *testing.T) {
	h := newHarness(t, harnessOptions{noWorkers: true, acct: func(a *inbound.Account) { a.WebhookID = "01OURHOOK" }})
	body := statusBody(1001, "PENDING", time.Now())
	for _, id := range []string{"01OTHERHOOK", "01OURHOOK"} {
		stamp := time.Now().UTC().Format(time.RFC3339)
		req, _ := http.NewRequest(http.MethodPost, h.api.URL+"/v1/zendesk/webhook", strings.NewReader(string(body)))
		req.Header.Set(zendesk.HeaderSignatureTimestamp, stamp)
		req.Header.Set(zendesk.HeaderSignature, zendesk.Sign("wrong", stamp, body))
		req.Header.Set(inbound.HeaderWebhookID, id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("webhook %s answered %d, want 401", id, resp.StatusCode)
		}
	}
	if got := h.metric("deskrelay_inbound_webhooks_rejected_total", "unsigned"); got != 1 {
		t.Fatalf("rejected{unsigned} = %v, want 1 (the other webhook's call)", got)
	}
	if got := h.metric("deskrelay_inbound_webhooks_rejected_total", "signature"); got != 1 {
		t.Fatalf("rejected{signature} = %v, want 1 (ours)", got)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool {
		sf, err := inbound.ReadSignatureFailures(context.Background(), h.rdb, keys.Default)
		return err == nil && sf.Run == 1
	}, "a run of exactly 1 signature failure (ours)")
}
