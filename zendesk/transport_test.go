package zendesk_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// concurrentCalls makes n calls at once (the fake holds each for a while,
// so that all n are in flight together) and fails t on any error.
func concurrentCalls(t *testing.T, c *zendesk.Client, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Me(t.Context()); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The transport puts a connection back in its pool just after the
	// body was read; let it, so that the next round finds them all idle.
	time.Sleep(50 * time.Millisecond)
}

// TestConnectionsAreReused: after n concurrent calls, n more open no new
// connection; Go's default transport keeps only 2 idle per host.
func TestConnectionsAreReused(t *testing.T) {
	const n = 12
	for _, tc := range []struct {
		name string
		cfg  func(*zendesk.Config)
	}{
		{"own transport", func(*zendesk.Config) {}},
		{"sized", func(c *zendesk.Config) { c.MaxIdleConnsPerHost = n }},
		{"shared transport", func(c *zendesk.Config) { c.Transport = zendesk.NewTransport(n) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := zendesktest.NewServer(t, zendesktest.Config{RateLimit: 10000})
			srv.SetLatency(100 * time.Millisecond)
			cfg := zendesk.Config{BaseURL: srv.URL(), Email: srv.Email(), APIToken: srv.APIToken(), Timeout: 5 * time.Second}
			tc.cfg(&cfg)
			c, err := zendesk.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			concurrentCalls(t, c, n)
			first := srv.Connections()
			if first < 2 {
				t.Fatalf("first round opened %d connections; the test needs concurrent calls", first)
			}
			concurrentCalls(t, c, n)
			if got := srv.Connections(); got != first {
				t.Errorf("second round opened %d new connections (first round: %d); want 0", got-first, first)
			}
		})
	}
}

// TestSharedTransportServesManyAccounts: two accounts' clients on one
// transport keep their connections apart and both reuse them.
func TestSharedTransportServesManyAccounts(t *testing.T) {
	tr := zendesk.NewTransport(8)
	var srvs []*zendesktest.Server
	var clients []*zendesk.Client
	for range 2 {
		srv := zendesktest.NewServer(t, zendesktest.Config{RateLimit: 10000})
		srv.SetLatency(50 * time.Millisecond)
		c, err := zendesk.New(zendesk.Config{BaseURL: srv.URL(), Email: srv.Email(), APIToken: srv.APIToken(), Transport: tr})
		if err != nil {
			t.Fatal(err)
		}
		srvs, clients = append(srvs, srv), append(clients, c)
	}
	for round := range 2 {
		for i, c := range clients {
			concurrentCalls(t, c, 8)
			if got := srvs[i].Connections(); got > 8 {
				t.Errorf("round %d: account %d has %d connections, want at most 8", round, i, got)
			}
		}
	}
}

func TestNewTransport(t *testing.T) {
	if got := zendesk.NewTransport(0).MaxIdleConnsPerHost; got != zendesk.DefaultMaxIdleConnsPerHost {
		t.Errorf("NewTransport(0).MaxIdleConnsPerHost = %d", got)
	}
	tr := zendesk.NewTransport(40)
	if tr.MaxIdleConnsPerHost != 40 || tr.MaxIdleConns != 0 || tr.Proxy == nil {
		t.Errorf("NewTransport(40) = idle/host %d, idle %d, proxy set %v", tr.MaxIdleConnsPerHost, tr.MaxIdleConns, tr.Proxy != nil)
	}
	if _, err := zendesk.New(zendesk.Config{BaseURL: "https://x.example.com", Email: "a@b.c", APIToken: "t", MaxIdleConnsPerHost: -1}); err == nil {
		t.Error("New accepted a negative MaxIdleConnsPerHost")
	}
	var _ http.RoundTripper = tr
}
