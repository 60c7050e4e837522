package zdoauth_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/internal/zdoauth"
)

// On a Redis Cluster the token store's scripts (seed, save, fail) and the
// refresh lock each touch one account's keys (one hash slot): several
// accounts refresh, share and replace their tokens there.
func TestSourceOnCluster(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.StartCluster(t).Client(t)
	for _, account := range []string{"acme", "globex", "initech"} {
		t.Run(account, func(t *testing.T) {
			c := newClock()
			e := &env{ts: newTokenServer(t, c.Now), rdb: rdb, clock: c, logs: &testutil.SyncBuffer{}, reg: prometheus.NewRegistry()}
			inAccount := func(cfg *zdoauth.Config) { cfg.Account = account }
			rt := e.ts.issue()
			s := e.mustSource(t, rt, inAccount)
			if err := s.Init(ctx); err != nil { // the seed script
				t.Fatal(err)
			}
			a := mustToken(t, s) // the lock, the refresh, the save script
			if b := mustToken(t, e.mustSource(t, rt, inAccount)); b != a {
				t.Fatal("a second replica got another token, want the stored one")
			}
			e.clock.Add(2 * time.Hour)
			if b := mustToken(t, s); b == a {
				t.Fatal("Token after expiry returned the expired token")
			}
			// A newly configured refresh token replaces the stored one.
			fresh := e.mustSource(t, e.ts.issue(), inAccount)
			if err := fresh.Init(ctx); err != nil {
				t.Fatal(err)
			}
			mustToken(t, fresh)
			if n := e.ts.count(); n != 3 {
				t.Fatalf("token requests = %d, want 3", n)
			}
			// A refused refresh is recorded (the fail script).
			e.clock.Add(2 * time.Hour)
			e.ts.setStatus(http.StatusBadRequest)
			if _, err := fresh.Token(ctx); err == nil || strings.Contains(err.Error(), "CROSSSLOT") {
				t.Fatalf("Token with the refresh refused = %v, want Zendesk's refusal", err)
			}
		})
	}
}
