package testutil

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// pollEvery is how often WaitFor checks its condition.
const pollEvery = 10 * time.Millisecond

// WaitFor polls cond until it holds, and fails tb when it does not within
// timeout, naming what it waited for (msg).
func WaitFor(tb testing.TB, timeout time.Duration, cond func() bool, msg string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, msg)
		}
		time.Sleep(pollEvery)
	}
}

// SyncBuffer is a bytes.Buffer that goroutines may write while a test reads
// it (a daemon's log).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// VerifyTestMain runs the package's tests and fails them if a goroutine is
// still running afterwards (goleak). opts are the package's own goleak
// options: ignore a library's goroutine only where needed, saying why.
func VerifyTestMain(m goleak.TestingM, opts ...goleak.Option) {
	goleak.VerifyTestMain(m, opts...)
}

// GoRedisPool ignores go-redis's connection-pool goroutines, which a closed
// client ends lazily (the reaper's ticker, a dial already under way): not a
// leak of ours, but still running when the tests end.
func GoRedisPool() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
	}
}
