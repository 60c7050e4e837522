package relay_test

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestDeliver(t *testing.T) {
	t.Run("TwentyConversationsOfTenInOrder", func(t *testing.T) {
		e := newEnv(t, envOptions{})
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
	})
}
