package main

// The goals, in one table: every figure issue 17 asks `make bench` for.
//
// A figure is a custom metric a benchmark reports with b.ReportMetric;
// benchtable finds it by its unit (and, for the older benchmarks whose
// units are generic, such as "p99_ms", by the benchmark's name too).
//
// The units of the newer benchmarks are named "<measure>/<figure>":
//
//	ratio/…        a dimensionless ratio of two rates
//	x/…            how many times a floor (faster is more)
//	s/…, ms/…      seconds, milliseconds
//	MB/…, B/…      megabytes (2^20 bytes), bytes
//	msgs-per-s/…   delivered messages per second (tasks-per-s: asynq tasks)
//	req-per-s/…    HTTP requests answered per second
//	…/msg          per delivered (or queued) message: redis-cmds/msg is the
//	               Redis commands the server executed (INFO commandstats),
//	               cpu-ms/msg the process's CPU time (user + system)
//	…/idle-account per configured account that receives no message
//
// Op is "<=" or ">=" against Goal; "" reports the figure with no goal.
// A figure no benchmark reported is "missing" (benchtable -strict fails).
var goals = []goal{
	// Relay overhead (relay/roundtrip_bench_test.go): the figures are the
	// serve-defaults case's; the poll-100ms case tells how much is waiting
	// for a poll.
	{Unit: "ratio/relay-vs-bare-asynq", Bench: overhead, Op: ">=", Goal: 0.6,
		Figure: "relay throughput ÷ a bare asynq task making the same Zendesk call to the same fake"},
	{Unit: "ratio/relay-vs-bare-asynq", Bench: overheadFast,
		Figure: "the same with asynq's poll at 100 ms and the relay's turn poll at 300 ms (the tests' settings)"},
	{Unit: "ratio/relay-vs-noop-asynq", Bench: overhead,
		Figure: "relay throughput ÷ a no-op asynq task (same workers, same Redis)"},
	{Unit: "msgs-per-s/relay", Bench: overhead, Show: "msgs/s",
		Figure: "relay: messages/s, intake → asynq → fake Zendesk, no rate limit, 20 workers"},
	{Unit: "msgs-per-s/bare-asynq", Bench: overhead, Show: "msgs/s", Figure: "bare asynq task making the same Zendesk call: messages/s"},
	{Unit: "tasks-per-s/noop-asynq", Bench: overhead, Show: "tasks/s", Figure: "no-op asynq task: tasks/s"},
	{Unit: "redis-cmds/msg", Bench: overhead, Show: "cmds",
		Figure: "Redis commands per delivered message, relay (by name in the benchmark's log)"},
	{Unit: "cpu-ms/msg", Bench: overhead, Show: "ms",
		Figure: "CPU per delivered message, relay (test process: load generator and fake Zendesk included)"},

	// Recovery and account isolation (relay).
	{Unit: "s/first-delivery-after-recovery", Op: "<=", Goal: 2, Show: "s",
		Figure: "first delivery after Zendesk recovers from an outage that closed the gate"},
	{Unit: "s/other-account-during-outage", Op: "<=", Goal: 2, Show: "s",
		Figure: "another account's message latency during one account's outage"},
	{Unit: "s/other-account-during-drain", Op: "<=", Goal: 2, Show: "s",
		Figure: "another account's message latency during one account's drain"},

	// serve as a process (bench_serve_test.go, BenchmarkServeIntake).
	{Unit: "MB/serve-rss-100k-queued", Op: "<=", Goal: 60, Show: "MB",
		Figure: "serve's resident memory with 100,000 messages queued (Zendesk down)"},
	{Unit: "B/redis-per-queued-msg", Op: "<=", Goal: 1622, Show: "B",
		Figure: "Redis memory per queued message (goal: not worse than the previous 1,622)"},
	{Unit: "req-per-s/intake", Show: "req/s",
		Figure: "POST /v1/messages answered per second, 50 clients (previous: 3,131)"},
	{Unit: "ms/intake-p99", Show: "ms",
		Figure: "POST /v1/messages p99 latency, 50 clients (previous: 52 ms)"},

	// Webhooks (inbound/bench_test.go; run with DESKRELAY_BENCH_DURATION=60s).
	{Unit: "p99_ms", Bench: "BenchmarkWebhookAck/Redis", Op: "<=", Goal: 5, Show: "ms",
		Figure: "webhook acknowledgement p99 at 500 requests/s (60 s in make bench)"},

	// Drains (relay).
	{Unit: "ratio_vs_burst_floor", Bench: "BenchmarkDrainAfterOutage", Op: "<=", Goal: 1.05, Show: "× floor",
		Figure: "outage drain time ÷ the floor the rate limit binds (the limiter's burst counted)"},
	{Unit: "x/batch-drain-vs-update-ticket-floor", Op: ">=", Goal: 10, Show: "×",
		Figure: "batch drain speed ÷ one Update Ticket request per message"},

	// Idle accounts.
	{Unit: "requests/idle-account-hour", Show: "req/h", Figure: "Zendesk requests per idle account per hour (reconcile runs and breaker checks)"},
	{Unit: "B/mem-per-account", Show: "B", Figure: "memory per configured account"},
	{Unit: "keys/idle-account", Show: "keys", Figure: "Redis keys per idle account"},
	{Unit: "ms/metrics-scrape-1000-accounts", Show: "ms", Figure: "a /metrics scrape of the per-account gauges with 1,000 accounts"},
	{Unit: "ms/status-summary-1000-accounts", Show: "ms", Figure: "/v1/status's (and deskrelay accounts') summary of 1,000 accounts"},
}

// The relay overhead benchmark's cases.
const (
	overhead     = "BenchmarkRelayOverhead/serve-defaults"
	overheadFast = "BenchmarkRelayOverhead/poll-100ms"
)
