package relay_test

import (
	"context"
	"testing"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
)

// TestBurstBeforeTheGateClosesStaysOffTheSharedList: an account's burst
// that arrives while its Zendesk fails but before its gate has closed (the
// gate needs a run of failures, each of them a slow request) must not fill
// the shared pending list: past what the account's budget takes in a
// release slice, new messages park at intake. Counted, not timed: the
// account's tasks in the outbound queue's pending and active lists right
// after the burst.
func TestBurstBeforeTheGateClosesStaysOffTheSharedList(t *testing.T) {
	const n, perMinute = 3000, 3000 // a release slice (2 s) of this budget: 100
	a := newAccounts(t, 0, accountOptions{name: "alpha", perMinute: perMinute}, accountOptions{name: keys.DefaultAccount})
	alpha := a.relays["alpha"]
	a.fakes["alpha"].Down() // no worker runs: the gate cannot close
	backlog := backlogOf("a", n)
	parallel(20, n, func(i int) { mustEnqueue(t, alpha, backlog[i]) })
	qi, err := a.insp.GetQueueInfo(queues.Outbound)
	if err != nil {
		t.Fatal(err)
	}
	if runnable := qi.Pending + qi.Active; runnable > 2*perMinute/30 {
		t.Fatalf("%d of alpha's %d tasks stand in the shared pending list, want at most a release slice (%d); parked %d",
			runnable, n, perMinute/30, parked(t, alpha))
	}
	if p := parked(t, alpha); p < n-2*perMinute/30 {
		t.Fatalf("parked %d of %d", p, n)
	}
	sum, err := alpha.Summary(context.Background())
	if err != nil || sum.Backlog != n {
		t.Fatalf("backlog %d (%v), want %d: every message counts, parked or not", sum.Backlog, err, n)
	}
}
