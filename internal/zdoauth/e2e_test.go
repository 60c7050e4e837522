package zdoauth_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/internal/zdoauth"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

const (
	fakeClientID     = "deskrelay"
	fakeClientSecret = "fake-client-secret-42"
)

// fakeEnv is the fake Zendesk with an OAuth client, a shared Redis and a
// clock shared by both.
type fakeEnv struct {
	zd    *zendesktest.Server
	rdb   redis.UniversalClient
	clock *clock
	logs  *testutil.SyncBuffer
	reg   *prometheus.Registry
}

func newFakeEnv(t *testing.T) *fakeEnv {
	t.Helper()
	c := newClock()
	zd := zendesktest.NewServer(t, zendesktest.Config{
		Now:            c.Now,
		AccessTokenTTL: time.Hour,
		// These tests burst bare clients (no budget) at the token
		// endpoint's concurrency, 300 calls at once; Zendesk's account
		// limit (200 a minute) is not their subject. relay_test.go runs
		// the relay at Zendesk's real limits.
		RateLimit: 100000,
		Logf:      func(string, ...any) {},
	})
	zd.OAuthClient(fakeClientID, fakeClientSecret)
	return &fakeEnv{zd: zd, rdb: redistest.New(t).Client, clock: c, logs: &testutil.SyncBuffer{}, reg: prometheus.NewRegistry()}
}

// replica returns a Zendesk client authenticated by its own Source, as one
// deskrelay replica has, configured with refreshToken.
func (e *fakeEnv) replica(t *testing.T, refreshToken string) (*zendesk.Client, *zdoauth.Source) {
	t.Helper()
	src, err := zdoauth.New(zdoauth.Config{
		BaseURL:      e.zd.URL(),
		ClientID:     fakeClientID,
		ClientSecret: fakeClientSecret,
		RefreshToken: refreshToken,
		Now:          e.clock.Now,
		PollInterval: 5 * time.Millisecond,
		Metrics:      e.reg,
	}, e.rdb, zerolog.New(e.logs))
	if err != nil {
		t.Fatalf("zdoauth.New: %v", err)
	}
	c, err := zendesk.New(zendesk.Config{BaseURL: e.zd.URL(), TokenSource: src})
	if err != nil {
		t.Fatalf("zendesk.New: %v", err)
	}
	return c, src
}

func (e *fakeEnv) tokenRequests() int { return e.zd.CountRequests(http.MethodPost, "/oauth/tokens") }

// burst runs n API calls on clients (round robin) from workers goroutines;
// midway calls mid once. It returns the errors.
func burst(clients []*zendesk.Client, n, workers int, mid func()) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		once sync.Once
	)
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if i == n/2 {
					once.Do(mid)
				}
				if _, err := clients[i%len(clients)].Me(context.Background()); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

func TestAgainstFakeZendesk(t *testing.T) {
	mids := []struct {
		name string
		mid  func(e *fakeEnv)
	}{
		// The clock passes the announced expiry: the early/expiry path.
		{"ClockPassesExpiry", func(e *fakeEnv) { e.clock.Add(time.Hour + time.Second) }},
		// Zendesk drops the access tokens without notice: the 401 path.
		{"AccessTokenDroppedByZendesk", func(e *fakeEnv) { e.zd.ExpireAccessTokens() }},
	}
	for _, m := range mids {
		t.Run("ExpiryMidBurstOneRefreshNoFailure/"+m.name, func(t *testing.T) {
			e := newFakeEnv(t)
			rt := e.zd.IssueRefreshToken()
			c, _ := e.replica(t, rt)
			if _, err := c.Me(context.Background()); err != nil {
				t.Fatalf("first call: %v", err)
			}
			before := e.tokenRequests()
			errs := burst([]*zendesk.Client{c}, 300, 8, func() { m.mid(e) })
			if len(errs) > 0 {
				t.Fatalf("%d of 300 calls failed, first: %v", len(errs), errs[0])
			}
			if got := e.tokenRequests() - before; got != 1 {
				t.Fatalf("token requests during the burst = %d, want exactly 1", got)
			}
		})
	}

	t.Run("TwoReplicasRefreshingAtOnceMakeOneRequest", func(t *testing.T) {
		e := newFakeEnv(t)
		rt := e.zd.IssueRefreshToken()
		c1, _ := e.replica(t, rt)
		c2, _ := e.replica(t, rt)
		if _, err := c1.Me(context.Background()); err != nil {
			t.Fatal(err)
		}
		before := e.tokenRequests()
		e.zd.SetLatency(20 * time.Millisecond) // widen the overlap
		e.zd.ExpireAccessTokens()
		errs := burst([]*zendesk.Client{c1, c2}, 40, 8, func() {})
		if len(errs) > 0 {
			t.Fatalf("%d calls failed, first: %v", len(errs), errs[0])
		}
		if got := e.tokenRequests() - before; got != 1 {
			t.Fatalf("token requests = %d, want exactly 1 for two replicas", got)
		}
		if got := e.zd.Refreshes(); got != 2 {
			t.Fatalf("fake's successful refreshes = %d, want 2 (first token + one)", got)
		}
	})

	t.Run("RevokedIsUnauthorizedUntilNewTokenConfigured", func(t *testing.T) {
		e := newFakeEnv(t)
		c, src := e.replica(t, e.zd.IssueRefreshToken())
		if _, err := c.Me(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.zd.RevokeRefreshTokens()
		e.zd.ExpireAccessTokens()
		_, err := c.Me(context.Background())
		if ze := zendesk.AsError(err); ze == nil || ze.Kind != zendesk.KindUnauthorized {
			t.Fatalf("call after revocation = %v, want KindUnauthorized", err)
		}
		st, err := src.State(context.Background())
		if err != nil || !st.Unauthorized {
			t.Fatalf("State = %+v, %v; want Unauthorized", st, err)
		}
		// The operator configures a new refresh token; a replica (re)starts with it.
		c2, _ := e.replica(t, e.zd.IssueRefreshToken())
		if _, err := c2.Me(context.Background()); err != nil {
			t.Fatalf("call with the new refresh token: %v", err)
		}
		// The replica still running with the old setting works again too.
		if _, err := c.Me(context.Background()); err != nil {
			t.Fatalf("old replica after the new token was configured: %v", err)
		}
		if st, _ := src.State(context.Background()); st.Unauthorized || st.LastRefreshError != "" {
			t.Fatalf("State = %+v, want healthy", st)
		}
	})
}
