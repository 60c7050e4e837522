package logging

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/testutil"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func dialRefused(i int) string {
	return fmt.Sprintf("dial tcp 127.0.0.%d:%d: connect: connection refused", i%3+1, 6379+i)
}
func asynqErr(a *Asynq) func(string) { return func(m string) { a.Error(m) } }
func redisErr(r *Redis) func(string) {
	return func(m string) { r.Printf(context.Background(), "redis: pool.go:%d: %s\n", 770, m) }
}
func asynqInfo(a *Asynq) func(string) { return func(m string) { a.Info(m) } }
func redisInfo(r *Redis) func(string) {
	return func(m string) { r.Printf(context.Background(), "%s", m) }
}

// linesOf parses every JSON line written to buf, failing the test on a
// line that is not JSON or holds a key twice.
func linesOf(t testing.TB, buf *testutil.SyncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		if d, err := DuplicateKeys([]byte(l)); err != nil || len(d) > 0 {
			t.Errorf("duplicate keys %v (%v) in %s", d, err, l)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestRepeatedFailure feeds each adapter a failure that repeats while Redis
// is down (issue 12.8: 54 lines in 15 s) and checks it is logged when it
// starts, as a summary once a minute, and once when it stops.
func TestRepeatedFailure(t *testing.T) {
	tests := []struct {
		name      string
		component string
		passLevel string // the level of a line the adapter is given as is
		build     func(*testutil.SyncBuffer, *fakeClock) (fail, info func(string))
	}{
		{name: "Asynq", component: "asynq", passLevel: "info", build: func(buf *testutil.SyncBuffer, c *fakeClock) (func(string), func(string)) {
			log, _ := New(buf, "json", "debug")
			a := NewAsynq(log)
			a.now = c.now
			return asynqErr(a), asynqInfo(a)
		}},
		{name: "Redis", component: "redis", passLevel: "warn", build: func(buf *testutil.SyncBuffer, c *fakeClock) (func(string), func(string)) {
			log, _ := New(buf, "json", "debug")
			r := NewRedis(log)
			r.now = c.now
			return redisErr(r), redisInfo(r)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := &testutil.SyncBuffer{}
			clock := newFakeClock()
			fail, info := tt.build(buf, clock)
			for i := 0; i < 54; i++ {
				fail(dialRefused(i))
				clock.add(15 * time.Second / 54)
			}
			got := linesOf(t, buf)
			if len(got) == 0 || len(got) > 2 {
				t.Fatalf("54 repeats in 15 s wrote %d lines, want 1 or 2:\n%s", len(got), buf.String())
			}
			if msg, _ := got[0]["message"].(string); !strings.Contains(msg, "connection refused") || got[0]["component"] != tt.component {
				t.Errorf("first line = %v, want the failure itself", got[0])
			}

			// It keeps failing, every 10 s: nothing more until the minute is
			// over, then one summary with the count (53 + 4 at 25..55 s).
			for i := 0; i < 5; i++ {
				clock.add(10 * time.Second)
				if n := len(linesOf(t, buf)); n != len(got) {
					t.Fatalf("a repeat within the minute wrote a line:\n%s", buf.String())
				}
				fail(dialRefused(60 + i))
			}
			got = linesOf(t, buf)
			summary := got[len(got)-1]
			if msg, _ := summary["message"].(string); !strings.Contains(msg, "repeated 57 times") || !strings.Contains(msg, "connection refused") {
				t.Fatalf("after a minute the last line = %v, want a summary of 57 repeats", summary)
			}
			if summary["repeats"] != 57.0 || summary["component"] != tt.component {
				t.Errorf("summary = %v, want repeats 57 from %s", summary, tt.component)
			}
			before := len(got)

			fail("READONLY You can't write against a read only replica.")
			got = linesOf(t, buf)
			if len(got) != before+1 || !strings.Contains(fmt.Sprint(got[len(got)-1]["message"]), "READONLY") {
				t.Fatalf("a different failure was not logged at once:\n%s", buf.String())
			}
			before = len(got)

			clock.add(31 * time.Second)
			info("server is healthy again")
			got = linesOf(t, buf)
			var stopped, passed int
			for _, m := range got[before:] {
				msg := fmt.Sprint(m["message"])
				switch {
				case strings.Contains(msg, "stopped") && strings.Contains(msg, "connection refused"):
					stopped++
					if m["repeats"] != 1.0 {
						t.Errorf("stopped line repeats = %v, want 1 (since the summary)", m["repeats"])
					}
				case msg == "server is healthy again" && m["level"] == tt.passLevel:
					passed++
				}
			}
			// READONLY was logged once and never repeated: no stopped line.
			if stopped != 1 || passed != 1 || len(got) != before+2 {
				t.Fatalf("after 31 s of quiet want 1 stopped line and the line given, got:\n%s", buf.String())
			}

			fail(dialRefused(7))
			if got := linesOf(t, buf); len(got) != before+3 {
				t.Fatalf("a failure after it stopped is new again, want it logged:\n%s", buf.String())
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ name, a, b string }{
		{name: "Addresses", a: "dial tcp 127.0.0.1:6379: connect: connection refused", b: "dial tcp 10.0.0.12:6380: connect: connection refused"},
		{name: "Durations", a: "retry in 1.5s", b: "retry in 250ms"},
		{name: "TaskIDs", a: "task 0b5e1f3a-8c4d-4e2a-9f1b-2c3d4e5f6a7b failed", b: "task 11111111-2222-3333-4444-555555555555 failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if normalize(tt.a) != normalize(tt.b) {
				t.Errorf("normalize(%q) = %q != normalize(%q) = %q", tt.a, normalize(tt.a), tt.b, normalize(tt.b))
			}
		})
	}
	if normalize("connection refused") == normalize("i/o timeout") {
		t.Error("different failures normalize alike")
	}
}

// TestRepeatedFailureConcurrent has workers fail at once (asynq's
// processor, scheduler and heartbeater all log while Redis is down): the
// failure is written once. Run with -race.
func TestRepeatedFailureConcurrent(t *testing.T) {
	buf := &testutil.SyncBuffer{}
	log, _ := New(buf, "json", "info")
	a := NewAsynq(log)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				a.Error(dialRefused(i))
			}
		}()
	}
	wg.Wait()
	if got := linesOf(t, buf); len(got) != 1 {
		t.Fatalf("400 concurrent repeats wrote %d lines, want 1:\n%s", len(got), buf.String())
	}
}
