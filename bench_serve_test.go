package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// BenchmarkServeIntake builds deskrelay and runs `deskrelay serve` as a
// process of its own (so that its resident memory is its own), on a private
// redis-server, against a fake Zendesk that is down (503). 50 clients post
// n messages through POST /v1/messages (10 per conversation, in sequence),
// closed loop; then it reports the intake's requests/s and p99 latency,
// serve's VmRSS with the n messages queued, and Redis's used_memory growth
// per queued message.
//
//	go test -run '^$' -bench ServeIntake -benchtime 1x .
//
// n is 100,000 (10,000 with -short; DESKRELAY_BENCH_N sets it). Only
// n = 100,000 reports MB/serve-rss-100k-queued, the figure with a goal;
// any other n reports MB/serve-rss-queued. Like every benchmark, it runs
// only under -bench: `go test ./...` does not build or start anything here.
func BenchmarkServeIntake(b *testing.B) {
	n := benchN(b)
	const clients, perConversation = 50, 10
	for b.Loop() {
		rs := redistest.StartServer(b, redistest.ServerOptions{})
		rdb := rs.Client(b)
		fake := zendesktest.NewServer(b, zendesktest.Config{Logf: func(string, ...any) {}})
		fake.Down()
		d := startServeProcess(b, buildDeskrelay(b), benchServeEnv(b, rs.URL(), fake))
		time.Sleep(2 * time.Second) // let start-up settle before the baseline
		mem0 := usedMemory(b, rdb)
		lat, took := postMessages(b, d.base, n, clients, perConversation)
		time.Sleep(3 * time.Second) // let the workers meet Zendesk down and the gate close
		rss, hwm := procMemory(b, d.pid)
		mem1 := usedMemory(b, rdb)
		queued := queuedTasks(b, rs.AsynqOpt())
		d.stop(b)

		p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
		b.ReportMetric(float64(n)/took.Seconds(), "req-per-s/intake")
		b.ReportMetric(p(0.99), "ms/intake-p99")
		b.ReportMetric(p(0.50), "ms/intake-p50")
		rssUnit := "MB/serve-rss-queued"
		if n == 100_000 {
			rssUnit = "MB/serve-rss-100k-queued"
		}
		b.ReportMetric(float64(rss)/(1<<20), rssUnit)
		b.ReportMetric(float64(mem1-mem0)/float64(n), "B/redis-per-queued-msg")
		b.ReportMetric(0, "ns/op")
		b.Logf("%d messages by %d clients in %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms; serve VmRSS %.1f MB (VmHWM %.1f MB); Redis used_memory +%.1f MB; outbound queue holds %d tasks",
			n, clients, took.Round(time.Millisecond), p(0.5), p(0.99), p(1), float64(rss)/(1<<20), float64(hwm)/(1<<20),
			float64(mem1-mem0)/(1<<20), queued)
		if queued < n {
			b.Errorf("the outbound queue holds %d tasks, want the %d messages posted", queued, n)
		}
	}
}

func benchN(b *testing.B) int {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	if v := os.Getenv("DESKRELAY_BENCH_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("DESKRELAY_BENCH_N=%q: want a whole number of messages, at least 100", v)
		}
	}
	return n
}

// buildDeskrelay builds the binary as `make build` does (without version
// stamps) into a temporary directory.
func buildDeskrelay(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "deskrelay")
	gobin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if os.Getenv("GOROOT") == "" {
		gobin = "go"
	}
	out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// benchServeEnv is serve's environment: the process's own minus every
// DESKRELAY_ setting, plus what the benchmark sets (no sink: the relay
// only; everything else at serve's defaults but the shutdown timeout).
func benchServeEnv(b *testing.B, redisURL string, fake *zendesktest.Server) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DESKRELAY_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"DESKRELAY_LISTEN=127.0.0.1:0",
		"DESKRELAY_REDIS_URL="+redisURL,
		"DESKRELAY_ZENDESK_URL="+fake.URL(),
		"DESKRELAY_ZENDESK_EMAIL="+fake.Email(),
		"DESKRELAY_ZENDESK_API_TOKEN="+fake.APIToken(),
		"DESKRELAY_INGEST_TOKEN="+benchIngestToken,
		"DESKRELAY_SPOOL_DIR="+b.TempDir(),
		"DESKRELAY_SHUTDOWN_TIMEOUT=5s", // the benchmark's end: no need to wait for parked tasks
	)
}

const benchIngestToken = "bench-ingest-token"

// serveProcess is a running `deskrelay serve`.
type serveProcess struct {
	cmd     *exec.Cmd
	pid     int
	base    string
	drained chan struct{} // its stderr read to the end
}

// startServeProcess starts bin serve and waits for its listening line.
func startServeProcess(b *testing.B, bin string, env []string) *serveProcess {
	b.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	d := &serveProcess{cmd: cmd, pid: cmd.Process.Pid, drained: make(chan struct{})}
	b.Cleanup(func() { d.stop(b) })
	addr := make(chan string, 1)
	var head bytes.Buffer // what serve said before it listened, for a failure
	go func() {
		defer close(d.drained)
		re := regexp.MustCompile(`"addr":"([^"]+)"[^\n]*"message":"deskrelay listening"`)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && addr != nil {
				addr <- m[1]
				addr = nil
			} else if addr != nil && head.Len() < 64<<10 {
				head.WriteString(sc.Text() + "\n")
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		d.base = "http://" + a
	case <-d.drained:
		b.Fatalf("serve exited before listening:\n%s", head.String())
	case <-time.After(30 * time.Second):
		b.Fatalf("serve did not listen within 30s:\n%s", head.String())
	}
	return d
}

// stop sends SIGTERM and waits for the process (SIGKILL after 30s).
func (d *serveProcess) stop(b *testing.B) {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { <-d.drained; exited <- d.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			b.Logf("serve exited: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-exited
		b.Errorf("serve did not stop within 30s of SIGTERM")
	}
}

// postMessages posts n messages with the given number of clients, closed
// loop, and returns the sorted latencies and the whole time. Message i is
// position i/convs+1 of conversation i mod convs, so that each
// conversation's messages arrive in order.
func postMessages(b *testing.B, base string, n, clients, perConversation int) ([]time.Duration, time.Duration) {
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	convs := max(1, n/perConversation)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failure atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n && failure.Load() == nil; i = int(next.Add(1)) - 1 {
				d, err := postMessage(hc, base, fmt.Sprintf("bench-c%06d", i%convs), i/convs+1)
				if err != nil {
					failure.CompareAndSwap(nil, err)
				}
				lat[i] = d
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if err, _ := failure.Load().(error); err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	return lat, took
}

func postMessage(hc *http.Client, base, conv string, seq int) (time.Duration, error) {
	body := fmt.Sprintf(`{"id":"%s-m%d","conversation_id":"%s","sequence":%d,"author":{"name":"Ann Lee","email":"ann+%s@example.com"},"body":"message %d of %s: the printer on the third floor is out of toner again"}`,
		conv, seq, conv, seq, conv, seq, conv)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/v1/messages", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+benchIngestToken)
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST /v1/messages: %w", err)
	}
	reply, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if resp.StatusCode != http.StatusAccepted {
		return d, fmt.Errorf("POST /v1/messages %s-m%d: %d %s", conv, seq, resp.StatusCode, reply)
	}
	return d, nil
}

// usedMemory is Redis's INFO memory used_memory.
func usedMemory(b *testing.B, rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatalf("used_memory %q: %v", v, err)
			}
			return n
		}
	}
	b.Fatal("INFO memory without used_memory")
	return 0
}

// procMemory reads VmRSS and VmHWM of process pid, in bytes.
func procMemory(b *testing.B, pid int) (rss, hwm int64) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("serve's memory: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			b.Fatalf("%s %q: %v", k, v, err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// queuedTasks is how many tasks the outbound queue holds (pending, active,
// scheduled, retrying).
func queuedTasks(b *testing.B, opt asynq.RedisConnOpt) int {
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	qi, err := insp.GetQueueInfo(queues.Outbound)
	if err != nil {
		b.Fatal(err)
	}
	return qi.Pending + qi.Active + qi.Scheduled + qi.Retry
}
