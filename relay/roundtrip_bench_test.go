package relay_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
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
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// BenchmarkRelayOverhead measures, side by side in one run and against the
// same fake Zendesk with no rate limit that binds, on a private
// redis-server, with serve's worker count (20):
//
//   - relay: deskrelay's relay delivering n messages (10 per conversation)
//     through intake (Relay.Enqueue) → the asynq server → Zendesk;
//   - bare: a bare asynq task whose handler makes the same Zendesk call
//     (the conversation's first message creates a ticket, the others add a
//     comment to it) with the same Zendesk client;
//   - noop: a no-op asynq task carrying the same payload.
//
// It reports each one's messages/s, the relay's ratios to both, the Redis
// commands per delivered message (INFO commandstats deltas of the private
// server, by name in the log; the total as redis-cmds/msg) and the test
// process's CPU per message (getrusage: the load generator and the fake
// Zendesk are in it too, for all three alike).
//
//	go test -run '^$' -bench RelayOverhead -benchtime 1x ./relay/
//
// Two cases: serve-defaults (asynq's poll interval 1s, the relay's turn
// poll 5s: the figure) and poll-100ms (100ms and 300ms, as the relay's
// tests and BenchmarkThroughput run), to tell how much of the difference
// is waiting for a poll.
//
// n is 2,000; 10,000 with DESKRELAY_BENCH_LONG=1; DESKRELAY_BENCH_RELAY_N
// sets it.
func BenchmarkRelayOverhead(b *testing.B) {
	for _, v := range []struct {
		name           string
		poll, turnPoll time.Duration
	}{
		{"serve-defaults", 0, 0}, // asynq's poll 1s, the relay's turn poll 5s
		{"poll-100ms", 100 * time.Millisecond, 300 * time.Millisecond}, // the tests' settings
	} {
		b.Run(v.name, func(b *testing.B) {
			rg := newOverheadRig(b)
			rg.poll, rg.turnPoll = v.poll, v.turnPoll
			iter := 0
			for b.Loop() {
				iter++
				rg.runOnce(iter)
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// runOnce measures the three phases one after the other and reports.
func (rg *overheadRig) runOnce(iter int) {
	b := rg.b
	rel := rg.measure(fmt.Sprintf("relay%d", iter), rg.relayPhase)
	bare := rg.measure(fmt.Sprintf("bare%d", iter), rg.barePhase)
	noop := rg.measure(fmt.Sprintf("noop%d", iter), rg.noopPhase)
	b.ReportMetric(rel.rate, "msgs-per-s/relay")
	b.ReportMetric(bare.rate, "msgs-per-s/bare-asynq")
	b.ReportMetric(noop.rate, "tasks-per-s/noop-asynq")
	b.ReportMetric(rel.rate/bare.rate, "ratio/relay-vs-bare-asynq")
	b.ReportMetric(rel.rate/noop.rate, "ratio/relay-vs-noop-asynq")
	b.ReportMetric(rel.perMsg(rel.totalCmds()), "redis-cmds/msg")
	b.ReportMetric(rel.perMsg(float64(rel.cpu.Microseconds())/1000), "cpu-ms/msg")
	b.ReportMetric(rel.perMsg(float64(rel.redisCPU.Microseconds())/1000), "redis-cpu-ms/msg")
	for _, p := range []overheadPhase{rel, bare, noop} {
		b.Log(p.summary())
	}
	b.Log("Redis commands per message, relay: " + rel.commandTable())
	b.Log("Redis commands per message, bare asynq: " + bare.commandTable())
}

// overheadRig is what the three phases share: the private Redis, the fake
// Zendesk, the sizes.
type overheadRig struct {
	b                 *testing.B
	rdb               *redis.Client
	opt               asynq.RedisClientOpt
	fake              *zendesktest.Server
	n, convs, workers int
	poll, turnPoll    time.Duration // asynq's poll interval, the relay's TurnPoll; 0: serve's defaults
}

func newOverheadRig(b *testing.B) *overheadRig {
	n := 2000
	if os.Getenv("DESKRELAY_BENCH_LONG") == "1" {
		n = 10000
	}
	if v := os.Getenv("DESKRELAY_BENCH_RELAY_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			b.Fatalf("DESKRELAY_BENCH_RELAY_N=%q: want a whole number of messages, at least 10", v)
		}
	}
	// INFO is server-wide: a server of the benchmark's own counts only its commands.
	srv := redistest.StartServer(b, redistest.ServerOptions{})
	const unbound = 10_000_000
	fake := zendesktest.NewServer(b, zendesktest.Config{RateLimit: unbound, UpdateTicketLimit: unbound,
		UserCreateLimit: unbound, PerTicketUpdateLimit: -1, Logf: func(string, ...any) {}})
	return &overheadRig{b: b, rdb: srv.Client(b), opt: srv.AsynqOpt(), fake: fake, n: n, convs: max(1, n/10), workers: 20}
}

// phaseSetup is one phase made ready: enqueue(i) posts message i, done
// closes when all n are handled, teardown stops what setup started.
type phaseSetup struct {
	enqueue  func(i int) error
	done     <-chan struct{}
	teardown func()
}

// overheadPhase is what one phase measured.
type overheadPhase struct {
	name     string
	n        int
	rate     float64
	elapsed  time.Duration
	cmds     map[string]int64 // calls during the phase, by command
	cpu      time.Duration    // the test process's user + system time
	redisCPU time.Duration    // redis-server's user + system time
}

// measure runs one phase on an empty Redis: setup (outside the
// measurement), then n messages posted by as many goroutines as there are
// workers, until the last is handled.
func (rg *overheadRig) measure(name string, setup func(prefix string) phaseSetup) overheadPhase {
	b := rg.b
	ctx := context.Background()
	if err := rg.rdb.FlushAll(ctx).Err(); err != nil { // the benchmark's own server
		b.Fatal(err)
	}
	ps := setup(name)
	defer ps.teardown()
	cmds0, rcpu0 := rg.redisStats()
	cpu0 := processCPU(b)
	start := time.Now()
	var failed atomic.Value
	parallel(rg.workers, rg.n, func(i int) {
		if err := ps.enqueue(i); err != nil {
			failed.CompareAndSwap(nil, err)
		}
	})
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("%s: enqueue: %v", name, err)
	}
	select {
	case <-ps.done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%s: not all %d messages handled within 10m", name, rg.n)
	}
	p := overheadPhase{name: name, n: rg.n, elapsed: time.Since(start)}
	p.cpu = processCPU(b) - cpu0
	cmds1, rcpu1 := rg.redisStats()
	p.redisCPU = rcpu1 - rcpu0
	p.rate = float64(rg.n) / p.elapsed.Seconds()
	p.cmds = map[string]int64{}
	for c, v := range cmds1 {
		if d := v - cmds0[c]; d > 0 && c != "info" {
			p.cmds[c] = d
		}
	}
	return p
}

// message i of a phase: conversation i mod convs, in sequence.
func (rg *overheadRig) message(prefix string, i int) relay.Message {
	conv := fmt.Sprintf("%s-c%05d", prefix, i%rg.convs)
	s := int64(i/rg.convs + 1)
	return relay.Message{ID: fmt.Sprintf("%s-m%d", conv, s), ConversationID: conv, Sequence: &s,
		Author: relay.Author{Name: "Ann Lee", Email: "ann+" + conv + "@example.com"},
		Body:   fmt.Sprintf("%s message %d", conv, s)}
}

// relayPhase: the relay with serve's defaults but for the rate limits.
func (rg *overheadRig) relayPhase(prefix string) phaseSetup {
	const unbound = 10_000_000
	lim := budget.New(rg.rdb, budget.Config{Rate: budget.PerMinute(unbound), UpdateRate: budget.PerMinute(unbound)})
	zd := rg.zendesk(lim.Observe)
	count := newDeliveryCount(rg.n)
	rel, err := relay.New(relay.Config{RateLimit: unbound, UpdateRateLimit: unbound, TicketUpdateLimit: unbound, TurnPoll: rg.turnPoll},
		relay.Deps{Redis: rg.rdb, Asynq: rg.opt, Zendesk: zd, Limiter: lim, Log: zerolog.Nop(), Outcomes: count})
	if err != nil {
		rg.b.Fatal(err)
	}
	mux := asynq.NewServeMux()
	rel.Register(mux)
	// Count the task runs: more than one per message are turns waited for
	// (a successor that ran before its predecessor was done) or a busy lock.
	var runs, waits atomic.Int64
	var start atomic.Pointer[time.Time]
	srv := rg.startServer(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		runs.Add(1)
		err := mux.ProcessTask(ctx, t)
		if err != nil {
			waits.Add(1)
		}
		return err
	}))
	return phaseSetup{
		enqueue: func(i int) error {
			if start.Load() == nil {
				now := time.Now()
				start.CompareAndSwap(nil, &now)
			}
			_, _, err := rel.Enqueue(context.Background(), rg.message(prefix, i))
			return err
		},
		done: count.done,
		teardown: func() {
			srv.Shutdown()
			_ = rel.Close()
			rg.b.Logf("%s: %.2f task runs per message, %.2f returned to asynq to run later; %s", prefix,
				float64(runs.Load())/float64(rg.n), float64(waits.Load())/float64(rg.n), count.progress(*start.Load()))
		},
	}
}

// bareTask is the payload of the bare and no-op tasks: what the handler
// needs to make the relay's Zendesk call.
type bareTask struct {
	ID, Conv, Name, Email, Body string
	Seq, Ticket                 int64
}

// barePhase: a plain asynq task per message whose handler makes the same
// call: a ticket for the first message of a conversation, a comment by the
// requester on the conversation's ticket (created before the clock starts)
// for the others.
func (rg *overheadRig) barePhase(prefix string) phaseSetup {
	zd := rg.zendesk(nil)
	tickets := make([]int64, rg.convs)
	for c := range tickets {
		m := rg.message(prefix+"-pre", c)
		tw, err := zd.CreateTicket(context.Background(), zendesk.NewTicket{Subject: "pre", ExternalID: m.ConversationID,
			Comment: zendesk.CommentInput{Body: m.Body, Public: true}, Requester: &zendesk.Requester{Name: m.Author.Name, Email: m.Author.Email}}, m.ID)
		if err != nil {
			rg.b.Fatal(err)
		}
		tickets[c] = tw.Ticket.ID
	}
	var handled atomic.Int64
	done := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:bare", func(ctx context.Context, t *asynq.Task) error {
		if err := bareCall(ctx, zd, t.Payload()); err != nil {
			return err
		}
		if handled.Add(1) == int64(rg.n) {
			close(done)
		}
		return nil
	})
	return rg.taskPhase(prefix, "bench:bare", mux, done, tickets)
}

func bareCall(ctx context.Context, zd *zendesk.Client, payload []byte) error {
	var p bareTask
	if err := json.Unmarshal(payload, &p); err != nil {
		return err
	}
	if p.Seq == 1 {
		_, err := zd.CreateTicket(ctx, zendesk.NewTicket{Subject: p.Body, ExternalID: p.Conv,
			Comment: zendesk.CommentInput{Body: p.Body, Public: true}, Requester: &zendesk.Requester{Name: p.Name, Email: p.Email},
			Metadata: map[string]any{relay.MetadataKey: p.ID}}, p.ID)
		return err
	}
	_, err := zd.UpdateTicket(ctx, p.Ticket, zendesk.TicketUpdate{
		Comment:  &zendesk.CommentInput{Body: p.Body, Public: true},
		Metadata: map[string]any{relay.MetadataKey: p.ID}})
	return err
}

// noopPhase: the same tasks, handled by doing nothing.
func (rg *overheadRig) noopPhase(prefix string) phaseSetup {
	var handled atomic.Int64
	done := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:noop", func(context.Context, *asynq.Task) error {
		if handled.Add(1) == int64(rg.n) {
			close(done)
		}
		return nil
	})
	return rg.taskPhase(prefix, "bench:noop", mux, done, make([]int64, rg.convs))
}

// taskPhase enqueues message i as a task of type typ, with a task id and
// the retry limit as the relay's tasks have them.
func (rg *overheadRig) taskPhase(prefix, typ string, mux *asynq.ServeMux, done chan struct{}, tickets []int64) phaseSetup {
	client := asynq.NewClient(rg.opt)
	srv := rg.startServer(mux)
	return phaseSetup{
		enqueue: func(i int) error {
			m := rg.message(prefix, i)
			payload, err := json.Marshal(bareTask{ID: m.ID, Conv: m.ConversationID, Name: m.Author.Name,
				Email: m.Author.Email, Body: m.Body, Seq: *m.Sequence, Ticket: tickets[i%rg.convs]})
			if err != nil {
				return err
			}
			_, err = client.Enqueue(asynq.NewTask(typ, payload), asynq.Queue(queues.Outbound),
				asynq.TaskID("msg{"+m.ID+"}"), asynq.MaxRetry(queues.MaxRetry))
			return err
		},
		done:     done,
		teardown: func() { srv.Shutdown(); _ = client.Close() },
	}
}

func (rg *overheadRig) zendesk(observe func(zendesk.Response)) *zendesk.Client {
	zd, err := zendesk.New(zendesk.Config{BaseURL: rg.fake.URL(), Email: rg.fake.Email(), APIToken: rg.fake.APIToken(),
		Timeout: 10 * time.Second, OnResponse: observe})
	if err != nil {
		rg.b.Fatal(err)
	}
	return zd
}

// startServer starts an asynq server as serve builds it, with the rig's
// worker count and poll interval.
func (rg *overheadRig) startServer(h asynq.Handler) *asynq.Server {
	srv := queues.NewServer(rg.opt, queues.ServerConfig{Concurrency: rg.workers, ShutdownTimeout: 5 * time.Second, PollInterval: rg.poll},
		zerolog.Nop())
	if err := srv.Start(h); err != nil {
		rg.b.Fatal(err)
	}
	return srv
}

// redisStats reads the calls of every command (INFO commandstats) and the
// server's CPU time (INFO cpu).
func (rg *overheadRig) redisStats() (map[string]int64, time.Duration) {
	info, err := rg.rdb.Info(context.Background(), "commandstats", "cpu").Result()
	if err != nil {
		rg.b.Fatal(err)
	}
	return parseCommandStats(info)
}

// parseCommandStats reads "cmdstat_<name>:calls=N,…" and used_cpu_sys /
// used_cpu_user lines of INFO.
func parseCommandStats(info string) (map[string]int64, time.Duration) {
	calls := map[string]int64{}
	var cpu float64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(k, "cmdstat_"):
			field, _, _ := strings.Cut(v, ",")
			if n, err := strconv.ParseInt(strings.TrimPrefix(field, "calls="), 10, 64); err == nil {
				calls[strings.TrimPrefix(k, "cmdstat_")] = n
			}
		case k == "used_cpu_sys" || k == "used_cpu_user":
			f, _ := strconv.ParseFloat(v, 64)
			cpu += f
		}
	}
	return calls, time.Duration(cpu * float64(time.Second))
}

func (p overheadPhase) perMsg(v float64) float64 { return v / float64(p.n) }

func (p overheadPhase) totalCmds() float64 {
	var t int64
	for _, v := range p.cmds {
		t += v
	}
	return float64(t)
}

func (p overheadPhase) summary() string {
	return fmt.Sprintf("%s: %d messages in %s: %.0f/s; %.1f Redis commands, %.3f ms CPU (test process), %.3f ms CPU (redis-server) per message",
		p.name, p.n, p.elapsed.Round(time.Millisecond), p.rate, p.perMsg(p.totalCmds()),
		p.perMsg(float64(p.cpu.Microseconds())/1000), p.perMsg(float64(p.redisCPU.Microseconds())/1000))
}

// commandTable lists the phase's commands per message, most first, on one
// line (go test keeps only 10 lines of a benchmark's log).
func (p overheadPhase) commandTable() string {
	names := make([]string, 0, len(p.cmds))
	for c := range p.cmds {
		names = append(names, c)
	}
	slices.SortFunc(names, func(a, b string) int { return int(p.cmds[b] - p.cmds[a]) })
	parts := make([]string, 0, len(names)+1)
	for _, c := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f", c, p.perMsg(float64(p.cmds[c]))))
	}
	return strings.Join(append(parts, fmt.Sprintf("total %.1f", p.perMsg(p.totalCmds()))), ", ")
}

// processCPU is the test process's user + system CPU time so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// deliveryCount is the relay's outcome sink in the benchmark: it counts
// distinct delivered messages in process (no Redis) and closes done at n.
type deliveryCount struct {
	mu   sync.Mutex
	seen map[string]bool
	at   []time.Time // when each was told, in order
	n    int
	done chan struct{}
}

func newDeliveryCount(n int) *deliveryCount {
	return &deliveryCount{seen: map[string]bool{}, n: n, done: make(chan struct{})}
}

func (d *deliveryCount) PublishOutcome(_ context.Context, o sink.Outcome) error {
	if o.Type != sink.TypeMessageDelivered {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.seen[o.MessageID] {
		d.seen[o.MessageID] = true
		d.at = append(d.at, time.Now())
		if len(d.seen) == d.n {
			close(d.done)
		}
	}
	return nil
}

// progress says when half, 90% and all of the messages were delivered,
// counted from start: a long tail is waiting, not work.
func (d *deliveryCount) progress(start time.Time) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.at) == 0 {
		return "none delivered"
	}
	at := func(q float64) time.Duration {
		return d.at[min(len(d.at)-1, int(q*float64(d.n))-1)].Sub(start).Round(10 * time.Millisecond)
	}
	return fmt.Sprintf("half delivered after %s, 90%% after %s, all after %s", at(0.5), at(0.9), at(1))
}

// TestParseCommandStats: the benchmark's reading of INFO commandstats and
// INFO cpu (no Redis needed).
func TestParseCommandStats(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_evalsha:calls=12,usec=300,usec_per_call=25.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_hget:calls=7,usec=7,usec_per_call=1.00\r\n# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:0.250000\r\nused_cpu_sys_children:9.0\r\n"
	calls, cpu := parseCommandStats(info)
	if calls["evalsha"] != 12 || calls["hget"] != 7 || len(calls) != 2 {
		t.Errorf("calls = %v, want evalsha 12, hget 7", calls)
	}
	if cpu != 1750*time.Millisecond {
		t.Errorf("cpu = %s, want 1.75s (sys + user, not the children's)", cpu)
	}
}
