package main

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/deskrelay/deskrelay/relay
cpu: Test CPU 9000
BenchmarkRelayOverhead/serve-defaults-2   	       1	9000000 ns/op	 0.6512 ratio/relay-vs-bare-asynq	 0.2100 ratio/relay-vs-noop-asynq	  812.5 msgs-per-s/relay	 31.20 redis-cmds/msg
--- BENCH: BenchmarkRelayOverhead-2
    roundtrip_bench_test.go:99: EVALSHA 6.1/msg
BenchmarkDrainAfterOutage-2	{"level":"warn","message":"stray output"}
       1	4420000000 ns/op	 4.42 drain_s	 1.13 ratio_vs_burst_floor
BenchmarkWebhookAck/Redis-2         	       1	 0.52 p50_ms	 2.20 p99_ms
BenchmarkWebhookAck/Spool-2         	       1	 0.66 p50_ms	 14.9 p99_ms
BenchmarkServeIntake-2 1 100 ns/op 3131 req-per-s/intake 52.1 ms/intake-p99 48.5 MB/serve-rss-100k-queued 1500 B/redis-per-queued-msg
PASS
ok  	github.com/deskrelay/deskrelay/relay	12.3s
`

func runOn(t *testing.T, in string, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(in), &out, &errb)
	if errb.Len() > 0 {
		t.Logf("stderr: %s", errb.String())
	}
	return out.String(), code
}

// rowOf returns the table line of the figure whose description starts so.
func rowOf(t *testing.T, out, figure string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "| "+figure) {
			return line
		}
	}
	t.Fatalf("no row %q in:\n%s", figure, out)
	return ""
}

func TestPassThroughAndTable(t *testing.T) {
	out, code := runOn(t, sample)
	if code != 0 {
		t.Errorf("exit %d, want 0 (missing figures fail only with -strict)", code)
	}
	if !strings.HasPrefix(out, sample) {
		t.Errorf("the input is not copied to the output first:\n%s", out)
	}
	if !strings.Contains(out, "Benchmarks on Test CPU 9000, ") || !strings.Contains(out, " cores, go1.") {
		t.Errorf("no machine line (CPU, cores, Go):\n%s", out)
	}
	for figure, want := range map[string]string{
		"relay throughput ÷ a bare asynq":   "| 0.651 | ≥ 0.6 | ok |",
		"relay throughput ÷ a no-op":        "| 0.210 | — | reported |",
		"Redis commands per delivered":      "| 31.2 cmds | — | reported |",
		"outage drain time":                 "| 1.13 × floor | ≤ 1.05 × floor | short |",
		"webhook acknowledgement p99":       "| 2.20 ms | ≤ 5 ms | ok |",
		"serve's resident memory":           "| 48.5 MB | ≤ 60 MB | ok |",
		"Redis memory per queued message":   "| 1,500 B | ≤ 1,622 B | ok |",
		"POST /v1/messages answered":        "| 3,131 req/s | — | reported |",
		"first delivery after Zendesk":      "| — | ≤ 2 s | missing |",
		"batch drain speed":                 "| — | ≥ 10 × | missing |",
		"Zendesk requests per idle account": "| — | — | missing |",
	} {
		if row := rowOf(t, out, figure); !strings.HasSuffix(row, want) {
			t.Errorf("row %q\n got %s\nwant …%s", figure, row, want)
		}
	}
}

// The spool case reports p99_ms too: only the Redis case's is the goal's.
func TestGenericUnitTakesItsBenchmarkOnly(t *testing.T) {
	out, _ := runOn(t, sample)
	if row := rowOf(t, out, "webhook acknowledgement p99"); strings.Contains(row, "14.9") {
		t.Errorf("the spool case's p99 was counted: %s", row)
	}
}

func TestSeveralRunsShowRangeJudgeWorst(t *testing.T) {
	in := "BenchmarkRelayOverhead/serve-defaults-2\t1\t0.70 ratio/relay-vs-bare-asynq\n" +
		"BenchmarkRelayOverhead/serve-defaults-2\t1\t0.55 ratio/relay-vs-bare-asynq\n" +
		"BenchmarkRelayOverhead/poll-100ms-2\t1\t0.90 ratio/relay-vs-bare-asynq\n"
	out, _ := runOn(t, in)
	if row := rowOf(t, out, "relay throughput ÷ a bare asynq"); !strings.HasSuffix(row, "| 0.550–0.700 | ≥ 0.6 | short |") {
		t.Errorf("got %s", row)
	}
}

func TestStrictFailsOnMissing(t *testing.T) {
	if _, code := runOn(t, sample, "-strict"); code != 1 {
		t.Errorf("-strict with missing figures: exit %d, want 1", code)
	}
}

func TestFailedBenchmarkFails(t *testing.T) {
	out, code := runOn(t, "--- FAIL: BenchmarkServeIntake\nFAIL\tgithub.com/deskrelay/deskrelay\t3.1s\n")
	if code != 1 || !strings.Contains(out, "A benchmark failed: --- FAIL: BenchmarkServeIntake") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

func TestGoalsListsEveryGoal(t *testing.T) {
	out, code := runOn(t, "", "-goals")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, g := range goals {
		if !strings.Contains(out, "`"+g.Unit+"`") {
			t.Errorf("-goals does not list %s", g.Unit)
		}
	}
}

func TestGoalsTableIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, g := range goals {
		key := g.Bench + " " + g.Unit
		if seen[key] {
			t.Errorf("goal %q declared twice", key)
		}
		seen[key] = true
		if strings.ContainsAny(g.Unit, " \t") || g.Figure == "" {
			t.Errorf("goal %+v: a unit has no spaces and a figure says what it is", g)
		}
		if g.Op != "" && g.Op != "<=" && g.Op != ">=" {
			t.Errorf("goal %s: Op %q, want <=, >= or empty", g.Unit, g.Op)
		}
	}
}

func TestNumber(t *testing.T) {
	for v, want := range map[float64]string{0.6512: "0.651", 0.7: "0.700", 0.0123: "0.0123", 2.2: "2.20", 12.34: "12.3", 812.5: "812", 3131: "3,131", 1234567: "1,234,567", 0: "0.00"} {
		if got := number(v); got != want {
			t.Errorf("number(%v) = %q, want %q", v, got, want)
		}
	}
}
