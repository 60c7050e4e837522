// Package redistest gives tests an isolated, real Redis.
//
// New claims a database of its own on the shared test server
// (DESKRELAY_TEST_REDIS_URL, default redis://127.0.0.1:6379), one of 1-15
// that is empty when claimed, and empties it again and releases it when the
// test ends, so that `go test ./...` can run packages in parallel without
// interference. It only ever deletes what a test created: a database that
// holds keys is never claimed (a developer's data there survives), and in
// database 0 it touches only its own claim locks (deskrelay-test:dblock:N).
// When no database is free and empty, or no shared server answers, it starts
// a private redis-server process; when there is no redis-server binary either,
// it falls back to the embedded miniredis and says so in the test log — unless
// DESKRELAY_TEST_REQUIRE_REDIS=1, in which case the test fails.
//
// StartServer starts a private redis-server process (for persistence and
// restart tests); without the binary such tests are skipped, saying why, or
// fail under DESKRELAY_TEST_REQUIRE_REDIS=1.
//
// StartCluster starts a Redis Cluster of three masters (private redis-server
// processes made one cluster by redis-cli --cluster create), and
// StartSentinel a Redis Sentinel watching a private server; both skip or fail
// like StartServer, and need redis-cli too.
//
// It is test support only; nothing outside _test.go files may import it.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/lease"
)

// Environment variables the helper reads.
const (
	EnvURL     = "DESKRELAY_TEST_REDIS_URL"
	EnvRequire = "DESKRELAY_TEST_REQUIRE_REDIS"
)

const (
	defaultURL = "redis://127.0.0.1:6379/0"
	lockPrefix = "deskrelay-test:dblock:"
	firstDB    = 1
	lastDB     = 15
	lockTTL    = 20 * time.Minute
	claimWait  = 3 * time.Minute
)

// DB is an isolated Redis database for one test.
type DB struct {
	Addr     string
	DB       int
	Client   *redis.Client
	Embedded bool // miniredis: no persistence, no restarts
	Mini     *miniredis.Miniredis
}

// URL is the redis:// URL of the database.
func (d *DB) URL() string { return fmt.Sprintf("redis://%s/%d", d.Addr, d.DB) }

// Options returns go-redis options for the database.
func (d *DB) Options() *redis.Options { return &redis.Options{Addr: d.Addr, DB: d.DB} }

// AsynqOpt returns asynq connection options for the database.
func (d *DB) AsynqOpt() asynq.RedisClientOpt { return asynq.RedisClientOpt{Addr: d.Addr, DB: d.DB} }

// Required reports whether tests must have a real Redis (CI).
func Required() bool { return os.Getenv(EnvRequire) == "1" || os.Getenv(EnvRequire) == "true" }

// New returns an empty database that belongs to tb alone until it ends.
func New(tb testing.TB) *DB {
	tb.Helper()
	raw := os.Getenv(EnvURL)
	if raw == "" {
		raw = defaultURL
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		tb.Fatalf("redistest: %s: %v", EnvURL, err)
	}
	return newDB(tb, opt.Addr, firstDB, lastDB)
}

// newDB claims one of the databases first..last on the shared server at
// addr, or starts a private server, or falls back to miniredis.
func newDB(tb testing.TB, addr string, first, last int) *DB {
	tb.Helper()
	if sharedAnswers(addr) {
		if db := claim(tb, addr, first, last); db != nil {
			return db
		}
	}
	if _, err := exec.LookPath("redis-server"); err == nil {
		s := StartServer(tb, ServerOptions{})
		return &DB{Addr: s.Addr, DB: 0, Client: s.Client(tb)}
	}
	if Required() {
		tb.Fatalf("redistest: no free, empty database at %s and no redis-server binary found, but %s=1", addr, EnvRequire)
	}
	tb.Logf("redistest: no free, empty database at %s and no redis-server binary: using embedded miniredis", addr)
	m := miniredis.RunT(tb)
	stop := runClock(m)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	tb.Cleanup(func() { _ = c.Close(); stop() })
	return &DB{Addr: m.Addr(), Client: c, Embedded: true, Mini: m}
}

var (
	sharedOnce sync.Map // addr -> bool
)

// runClock makes miniredis keep time like a server: it expires keys (leases,
// locks, TTLs) only when told that time has passed, so tell it every 10ms.
func runClock(m *miniredis.Miniredis) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				m.SetTime(now)
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return func() { close(done); <-finished }
}

func sharedAnswers(addr string) bool {
	if v, ok := sharedOnce.Load(addr); ok {
		return v.(bool)
	}
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ok := c.Ping(ctx).Err() == nil
	sharedOnce.Store(addr, ok)
	return ok
}

// claim takes a database first..last on the shared server that is both
// free (no other test holds its claim lock, a lease in database 0) and empty
// (DBSIZE 0 under the lock), and empties it again when tb ends if the lock
// is still ours. A database that holds keys nobody claimed — a developer's
// own data, or what a killed test run left behind — is never touched. It
// returns nil when no database is free and empty: at once when a private
// redis-server can be started instead, otherwise after waiting up to
// claimWait for a busy database.
func claim(tb testing.TB, addr string, first, last int) *DB {
	tb.Helper()
	lockc := redis.NewClient(&redis.Options{Addr: addr, DB: 0})
	_, lookErr := exec.LookPath("redis-server")
	deadline := time.Now().Add(claimWait)
	for {
		busy := false
		for n := max(first, 1); n <= last; n++ { // never database 0: the locks live there
			db, isBusy := tryClaim(tb, lockc, addr, n)
			if db != nil {
				return db
			}
			busy = busy || isBusy
		}
		if !busy || lookErr == nil || time.Now().After(deadline) {
			_ = lockc.Close()
			tb.Logf("redistest: no free, empty database %d-%d on %s (a database holding keys is left alone)", first, last, addr)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tryClaim takes database n if its lock is free and it is empty. busy
// reports that another test holds it (it may be free later); a database that
// is not empty is given up (lock released) and not busy.
func tryClaim(tb testing.TB, lockc *redis.Client, addr string, n int) (db *DB, busy bool) {
	tb.Helper()
	ctx := context.Background()
	l, err := lease.Acquire(ctx, lockc, lockPrefix+strconv.Itoa(n), lockTTL)
	if err != nil {
		tb.Fatalf("redistest: claim database %d on %s: %v", n, addr, err)
	}
	if l == nil {
		return nil, true
	}
	c := redis.NewClient(&redis.Options{Addr: addr, DB: n})
	size, err := c.DBSize(ctx).Result()
	if err != nil || size != 0 {
		_ = c.Close()
		_, _ = l.Release(ctx)
		if err != nil {
			tb.Fatalf("redistest: size of database %d on %s: %v", n, addr, err)
		}
		return nil, false
	}
	tb.Cleanup(func() {
		defer lockc.Close()
		defer c.Close()
		// The database was empty when claimed: whatever it holds now, the
		// test created. Flush it only while the lock is still ours (Extend
		// gives a full TTL to do so); else another test owns it now.
		held, err := l.Extend(ctx)
		if err != nil || !held {
			tb.Logf("redistest: lost the claim on database %d (held=%v, err=%v): leaving it as it is", n, held, err)
			return
		}
		if err := c.FlushDB(ctx).Err(); err != nil {
			tb.Logf("redistest: empty database %d: %v", n, err)
		}
		_, _ = l.Release(ctx)
	})
	return &DB{Addr: addr, DB: n, Client: c}, false
}

// ServerOptions configures a private redis-server process.
type ServerOptions struct {
	// AppendOnly turns on the append-only file with appendfsync always, so
	// that a restart keeps every acknowledged write.
	AppendOnly bool
	// Password, when set, is required of every client (requirepass).
	Password string
	// ConfigFile, when set, is given to redis-server first (a sentinel
	// needs a file of its own, which it rewrites).
	ConfigFile string
	// Args are further redis-server arguments (a cluster node's, a
	// sentinel's), appended after the ones above.
	Args []string
}

// Server is a private redis-server process.
type Server struct {
	Addr string
	Dir  string
	opts ServerOptions
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartServer starts a private redis-server on a free loopback port and stops
// it when tb ends. Without a redis-server binary the test is skipped (or fails
// when DESKRELAY_TEST_REQUIRE_REDIS=1).
func StartServer(tb testing.TB, opts ServerOptions) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if Required() {
			tb.Fatalf("redistest: redis-server binary not found, but %s=1", EnvRequire)
		}
		tb.Skip("redistest: needs a redis-server process (persistence or restarts), and no redis-server binary is installed")
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(tb))), Dir: tb.TempDir(), opts: opts}
	s.Start(tb)
	tb.Cleanup(func() { s.Kill(tb) })
	return s
}

// URL is the redis:// URL of database 0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// AsynqOpt returns asynq connection options for database 0.
func (s *Server) AsynqOpt() asynq.RedisClientOpt { return asynq.RedisClientOpt{Addr: s.Addr} }

// Client returns a go-redis client closed when tb ends.
func (s *Server) Client(tb testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Start starts (or restarts) the process on the same port and directory.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		tb.Fatalf("redistest: server %s already running", s.Addr)
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	var args []string
	if s.opts.ConfigFile != "" {
		args = append(args, s.opts.ConfigFile)
	}
	args = append(args, "--port", port, "--bind", "127.0.0.1", "--dir", s.Dir, "--save", "",
		"--daemonize", "no", "--maxmemory-policy", "noeviction", "--logfile", "redis.log")
	if s.opts.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if s.opts.Password != "" {
		args = append(args, "--requirepass", s.opts.Password)
	}
	args = append(args, s.opts.Args...)
	cmd := exec.CommandContext(context.Background(), "redis-server", args...)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("redistest: start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Password: s.opts.Password, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.Dir + "/redis.log")
			tb.Fatalf("redistest: redis-server on %s did not answer within 10s: %v\n%s", s.Addr, err, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill stops the process at once (SIGKILL), as a crash would.
func (s *Server) Kill(_ testing.TB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// Restart kills the process and starts it again on the same port and data
// directory: with AppendOnly, every acknowledged write is still there.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Kill(tb)
	s.Start(tb)
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
