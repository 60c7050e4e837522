package relay_test

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestDeliver(t *testing.T) {
	t.Run("TwentyConversationsOfTenInOrder", func(t *testing.T) {
		// Order under concurrency, not pacing: 180 updates at Zendesk's real
		// limit (70% of 100 a minute) would take 2.5 minutes;
		// TestUpdateTicketPace covers that.
		e := newEnv(t, envOptions{unlimited: true})
		want, all := wantBodies(20, 10, "burst")
		// Post concurrently, each conversation's messages in shuffled
		// arrival order: order comes from sequence.
		var wg sync.WaitGroup
		for c := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ms := all[c*10 : c*10+10]
				for _, i := range []int{3, 0, 1, 9, 2, 5, 4, 8, 6, 7} {
					mustEnqueue(t, e.relay, ms[i])
				}
			}()
		}
		wg.Wait()
		waitStatus(t, e.relay, ids(all), "delivered", 60*time.Second)
		checkExactlyOnce(t, e.fake, want)
		st, err := e.relay.Status(context.Background(), all[0].ID)
		if err != nil || st.TicketID == 0 || st.Attempts != 1 {
			t.Errorf("status of first message = %+v, %v; want a ticket and 1 attempt", st, err)
		}
		if got := counterValue(t, e, "deskrelay_outbound_deliveries_total", "delivered"); got != 200 {
			t.Errorf("deliveries{outcome=delivered} = %v, want 200", got)
		}
	})
}

// counter finds one series of a registered counter vector by its label value.
func counterValue(t *testing.T, e *env, name, label string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{%s} not registered", name, label)
	return 0
}
