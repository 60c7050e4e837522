package budget_test

import (
	"context"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/zendesk"
)

// On a Redis Cluster every script of the limiter touches one account's keys
// only (one hash slot): every family, an update, a ticket's own budget, a
// pause and a learned limit work there, and accounts, spread over the
// masters, keep their budgets apart.
func TestLimiterOnCluster(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.StartCluster(t).Client(t)
	accounts := []string{"acme", "globex", "initech", "umbrella"}
	lims := map[string]*budget.Limiter{}
	for _, a := range accounts {
		lims[a] = budget.New(rdb, budget.Config{Space: keys.For(a), Rate: budget.PerMinute(600)})
	}
	families := []zendesk.Family{zendesk.FamilyAccount, zendesk.FamilyTicketsUpdate, zendesk.FamilyTicketsIndex,
		zendesk.FamilyIncrementalExports, zendesk.FamilySearch, zendesk.FamilyUsersCreateOrUpdate, zendesk.FamilyWebhooks}
	for _, a := range accounts {
		l := lims[a]
		l.Observe(zendesk.Response{StatusCode: 200, Family: zendesk.FamilyWebhooks,
			RateLimit: zendesk.RateLimit{Known: true, Limit: 400, Remaining: 300}})
		for _, f := range families {
			if ok, _, err := l.AllowFamily(ctx, f); err != nil || !ok {
				t.Fatalf("%s: AllowFamily(%s) = %v, %v; want allowed", a, f, ok, err)
			}
		}
		if ok, _, err := l.AllowUpdate(ctx, 100); err != nil || !ok {
			t.Fatalf("%s: AllowUpdate = %v, %v", a, ok, err)
		}
		if ok, _, err := l.AllowTicketUpdate(ctx, 42, 30, 10*time.Minute); err != nil || !ok {
			t.Fatalf("%s: AllowTicketUpdate = %v, %v", a, ok, err)
		}
		if _, err := l.State(ctx); err != nil {
			t.Fatalf("%s: State: %v", a, err)
		}
	}
	if err := lims["acme"].PauseFamily(ctx, zendesk.FamilySearch, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := lims["acme"].PauseFor(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, d, err := lims["acme"].AllowFamily(ctx, zendesk.FamilySearch); err != nil || ok || d < 50*time.Second {
		t.Fatalf("acme paused: AllowFamily = %v, %s, %v; want refused for about a minute", ok, d, err)
	}
	for _, a := range accounts[1:] {
		if ok, _, err := lims[a].AllowFamily(ctx, zendesk.FamilySearch); err != nil || !ok {
			t.Fatalf("%s is refused by acme's pause (%v)", a, err)
		}
	}
}
