package inbound_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
)

func TestRedisOutage(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{AppendOnly: true})
	h := newHarness(t, harnessOptions{server: srv, cfg: func(c *inbound.Config) { c.EnqueueTimeout = 300 * time.Millisecond }})
	h.link("conv_42", 1001)
	base := time.Now().Add(-time.Minute).Truncate(time.Second)
	var want []string
	body := func(i int) []byte {
		want = append(want, fmt.Sprintf("zd:comment:%d", 1000+i))
		return commentBody(1001, int64(1000+i), "conv_42", true, true, base.Add(time.Duration(i)*time.Second))
	}

	srv.Kill(t)
	for i := range 15 {
		start := time.Now()
		r := h.send(body(i), fmt.Sprintf("inv-%d", i))
		if !strings.Contains(r.Body, "spooled") {
			t.Fatalf("request %d answered %s, want spooled", i, r.Body)
		}
		// not held up by the unreachable Redis (the enqueue timeout is
		// 100ms); the latency itself is the WebhookAck benchmark's
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("request %d took %s with Redis down", i, d)
		}
	}
	if n := h.recv.SpoolPending(); n != 15 {
		t.Fatalf("spool holds %d requests, want 15", n)
	}

	// deskrelay restarts while Redis is still down; Zendesk retries one
	// invocation and sends new ones
	h.start()
	if n := h.recv.SpoolPending(); n != 15 {
		t.Fatalf("restarted receiver sees %d spooled, want 15", n)
	}
	h.send(commentBody(1001, 1003, "conv_42", true, true, base.Add(3*time.Second)), "inv-3") // a retry
	for i := 15; i < 20; i++ {
		if r := h.send(body(i), fmt.Sprintf("inv-%d", i)); !strings.Contains(r.Body, "spooled") {
			t.Fatalf("request %d answered %s", i, r.Body)
		}
	}

	srv.Start(t)
	testutil.WaitFor(t, 30*time.Second, func() bool { return len(h.sink.events()) >= len(want) }, "every spooled event at the sink")
	h.idle(10 * time.Second)
	got := h.sink.ids()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sink got (in order) %v\nwant %v", got, want)
	}
	if n := h.recv.SpoolPending(); n != 0 {
		t.Fatalf("spool still holds %d requests", n)
	}
	if segs, _ := filepath.Glob(filepath.Join(h.spool, "*.seg")); len(segs) != 1 {
		t.Fatalf("spool keeps %d segments, want the one fresh segment", len(segs))
	} else if info, err := os.Stat(segs[0]); err != nil || info.Size() != 0 {
		t.Fatalf("the segment left holds %d bytes (%v), want a recycled empty one", info.Size(), err)
	}
	// Redis is back: requests go straight in again
	if r := h.send(body(20), "inv-20"); !strings.Contains(r.Body, "accepted") {
		t.Fatalf("after recovery answered %s", r.Body)
	}
}

func TestSpoolDirUnusable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := inbound.New(inbound.Config{SinkURL: "http://127.0.0.1:1/", SinkSecret: sinkSecret, SpoolDir: file}, inbound.Deps{Redis: redistest.New(t).Client})
	if err == nil || !strings.Contains(err.Error(), "inbound: SpoolDir: ") {
		t.Fatalf("err = %v, want one naming SpoolDir", err)
	}
}

func TestConfigErrors(t *testing.T) {
	rdb := redistest.New(t).Client
	tests := []struct {
		name string
		cfg  inbound.Config
		want string
	}{
		{"SinkURLRequired", inbound.Config{SinkSecret: sinkSecret}, "inbound: SinkURL: required"},
		{"SinkURLScheme", inbound.Config{SinkURL: "ftp://x", SinkSecret: sinkSecret}, "inbound: SinkURL: "},
		{"SinkSecretRequired", inbound.Config{SinkURL: "http://x"}, "inbound: SinkSecret: required"},
		{"SinkSecretPrefix", inbound.Config{SinkURL: "http://x", SinkSecret: "abc"}, "inbound: SinkSecret: must start with whsec_"},
		{"SinkSecretBase64", inbound.Config{SinkURL: "http://x", SinkSecret: "whsec_%%%"}, "inbound: SinkSecret: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SpoolDir = t.TempDir()
			_, err := inbound.New(tt.cfg, inbound.Deps{Redis: rdb})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "%%%") {
				t.Fatal("error echoes the secret")
			}
		})
	}
}

func TestSpoolFullAnswers503(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{})
	h := newHarness(t, harnessOptions{server: srv, noWorkers: true, cfg: func(c *inbound.Config) { c.SpoolMaxBytes = 900 }})
	srv.Kill(t)
	now := time.Now()
	if r := h.send(commentBody(1001, 1, "conv", true, true, now), "a"); !strings.Contains(r.Body, "spooled") {
		t.Fatalf("first answered %s", r.Body)
	}
	r := h.post(commentBody(1001, 2, "conv", true, true, now), webhookSecret, now, "b")
	if r.Status != 503 || !strings.Contains(r.Body, "unavailable") {
		t.Fatalf("full spool answered %d %s, want 503", r.Status, r.Body)
	}
	if got := h.metric("deskrelay_inbound_webhooks_rejected_total", "unavailable"); got != 1 {
		t.Fatalf("rejected{unavailable} = %v", got)
	}
	if got := h.metric("deskrelay_inbound_spool_pending", ""); got != 1 {
		t.Fatalf("spool_pending = %v", got)
	}
}

// TestSpoolCrashBeforeRemove: a crash after a spooled request was moved
// into Redis but before its file was removed moves it again after the
// restart; the event still reaches the sink once.
func TestSpoolCrashBeforeRemove(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{AppendOnly: true})
	h := newHarness(t, harnessOptions{server: srv})
	h.link("conv_42", 1001)
	srv.Kill(t)
	h.send(commentBody(1001, 1500, "conv_42", true, true, time.Now()), "")
	h.send(commentBody(1001, 1501, "conv_42", true, true, time.Now()), "")
	saved := copyDir(t, h.spool) // what a crash before the cursor update leaves
	srv.Start(t)
	testutil.WaitFor(t, 15*time.Second, func() bool { return len(h.sink.events()) == 2 }, "the deliveries")
	h.stopRun()
	<-h.runDone
	restoreDir(t, saved, h.spool)
	h.start()
	if n := h.recv.SpoolPending(); n != 2 {
		t.Fatalf("restarted receiver sees %d spooled, want 2", n)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return h.recv.SpoolPending() == 0 }, "the spool to drain again")
	h.idle(10 * time.Second)
	if ids := h.sink.ids(); len(ids) != 2 {
		t.Fatalf("sink got %v, want two deliveries", ids)
	}
}

// TestSpoolTornTail: a record cut short by a crash mid-append (never
// acknowledged) is dropped at start; the records before it are kept.
func TestSpoolTornTail(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{AppendOnly: true})
	h := newHarness(t, harnessOptions{server: srv})
	h.link("conv_42", 1001)
	srv.Kill(t)
	h.send(commentBody(1001, 1600, "conv_42", true, true, time.Now()), "")
	h.stopRun()
	<-h.runDone
	segs, _ := filepath.Glob(filepath.Join(h.spool, "*.seg"))
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte{0, 0, 1, 0, 9, 9}) // half a header
	f.Close()
	h.start()
	if n := h.recv.SpoolPending(); n != 1 {
		t.Fatalf("spool holds %d after a torn append, want 1", n)
	}
	h.send(commentBody(1001, 1601, "conv_42", true, true, time.Now()), "")
	srv.Start(t)
	testutil.WaitFor(t, 15*time.Second, func() bool { return len(h.sink.events()) == 2 }, "both deliveries")
}

func copyDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func restoreDir(t *testing.T, files map[string][]byte, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.Remove(filepath.Join(dir, e.Name()))
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSpoolDiskFull: with Redis down, an append that fails part-way answers
// 503 with Retry-After and leaves nothing torn behind; what was acknowledged
// before and after it reaches the sink, also across a restart.
func TestSpoolDiskFull(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{AppendOnly: true})
	h := newHarness(t, harnessOptions{server: srv})
	h.link("conv_42", 1001)
	srv.Kill(t)
	now := time.Now()
	h.send(commentBody(1001, 1700, "conv_42", true, true, now), "")
	inbound.SetSpoolWriter(h.recv, func(f *os.File, p []byte) (int, error) {
		n, _ := f.Write(p[:len(p)/2])
		return n, syscall.ENOSPC
	})
	r := h.post(commentBody(1001, 1701, "conv_42", true, true, now.Add(time.Second)), webhookSecret, time.Now(), "")
	if r.Status != http.StatusServiceUnavailable || r.RetryAfter != "10" {
		t.Fatalf("append on a full disk answered %d Retry-After %q, want 503 with Retry-After: 10", r.Status, r.RetryAfter)
	}
	inbound.SetSpoolWriter(h.recv, nil)
	h.send(commentBody(1001, 1702, "conv_42", true, true, now.Add(2*time.Second)), "")
	h.start() // a restart while Redis is still down
	if n := h.recv.SpoolPending(); n != 2 {
		t.Fatalf("restarted receiver sees %d spooled, want 2", n)
	}
	srv.Start(t)
	testutil.WaitFor(t, 15*time.Second, func() bool { return len(h.sink.events()) >= 2 }, "both acknowledged events at the sink")
	h.idle(10 * time.Second)
	if got := fmt.Sprint(h.sink.ids()); got != "[zd:comment:1700 zd:comment:1702]" {
		t.Fatalf("sink got %s, want 1700 and 1702 once each", got)
	}
}

// TestSpoolStuck: while the mover fails (here: Redis stays down), it backs
// off, the status and a metric say the spool is stuck and why, and Run
// still stops at once on shutdown; when Redis returns, it is no longer stuck.
func TestSpoolStuck(t *testing.T) {
	srv := redistest.StartServer(t, redistest.ServerOptions{AppendOnly: true})
	h := newHarness(t, harnessOptions{server: srv, noWorkers: true})
	srv.Kill(t)
	h.send(commentBody(1001, 1800, "conv_42", true, true, time.Now()), "")
	testutil.WaitFor(t, 10*time.Second, func() bool { return h.recv.SpoolStatus().Stuck != "" }, "the spool to report it is stuck")
	st := h.recv.SpoolStatus()
	if st.Pending != 1 || !strings.Contains(st.Stuck, "redis") || st.StuckSince.IsZero() || st.OldestAt.IsZero() {
		t.Fatalf("spool status %+v, want 1 pending, stuck on redis, with its oldest record's time", st)
	}
	if got := h.metric("deskrelay_inbound_spool_stuck", ""); got != 1 {
		t.Fatalf("deskrelay_inbound_spool_stuck = %v, want 1", got)
	}
	srv.Start(t)
	testutil.WaitFor(t, 40*time.Second, func() bool { return h.recv.SpoolStatus().Stuck == "" && h.recv.SpoolPending() == 0 }, "the spool to drain")
	srv.Kill(t)
	h.send(commentBody(1001, 1801, "conv_42", true, true, time.Now()), "")
	testutil.WaitFor(t, 10*time.Second, func() bool { return h.recv.SpoolStatus().Stuck != "" }, "the spool to be stuck again")
	h.stopRun()
	select {
	case <-h.runDone:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not stop within 2s of shutdown")
	}
}
