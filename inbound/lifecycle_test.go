package inbound_test

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk"
)

// blackhole is a "Redis" that accepts connections and never answers.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// receiverGoroutines counts the goroutines running the receiver's code.
func receiverGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "inbound.(*Receiver)") {
			n++
		}
	}
	return n
}

// TestCloseStopsGoroutines: the goroutines the request path starts (the
// enqueue deadline, the signature-state and last-received writes) belong to
// the Receiver: Close stops them, even while Redis hangs.
func TestCloseStopsGoroutines(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: blackhole(t), MaxRetries: -1, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	r, err := inbound.New(inbound.Config{
		SinkURL: "http://127.0.0.1:1/", SinkSecret: sinkSecret, SpoolDir: t.TempDir(),
		EnqueueTimeout: 50 * time.Millisecond, SlowEnqueue: 10 * time.Millisecond,
	}, inbound.Deps{Redis: rdb, Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetAccounts([]inbound.Account{{WebhookSecret: webhookSecret}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.Webhook())
	body := statusBody(1001, "PENDING", time.Now())
	for _, secret := range []string{"wrong", webhookSecret} {
		stamp := time.Now().UTC().Format(time.RFC3339)
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		req.Header.Set(zendesk.HeaderSignatureTimestamp, stamp)
		req.Header.Set(zendesk.HeaderSignature, zendesk.Sign(secret, stamp, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if receiverGoroutines() == 0 {
		t.Fatal("no receiver goroutine waits for Redis: the test does not test anything")
	}
	srv.Close()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 300*time.Millisecond, func() bool { return receiverGoroutines() == 0 }, "the receiver's goroutines to stop after Close")
}
