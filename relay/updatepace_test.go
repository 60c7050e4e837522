package relay_test

import (
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// TestUpdateTicketPace: with Zendesk's real limits (the fake's defaults:
// Update Ticket 100 a minute), the relay paces ticket updates at its share
// of that limit (DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT, 70% by default: 70 a
// minute, a burst of 7), leaving agents room, and waiting is no attempt.
func TestUpdateTicketPace(t *testing.T) {
	t.Parallel()
	t.Run("PacedAtTheConfiguredShare", func(t *testing.T) {
		e := newEnv(t, envOptions{rateLimit: 6000}) // the account's budget out of the way: Update Ticket's share paces
		want, all := wantBodies(2, 11, "pace")      // 2 creates, 20 updates
		start := time.Now()
		enqueueAll(t, e.relay, all)
		maxRetried := 0
		testutil.WaitFor(t, 60*time.Second, func() bool {
			tasks, _ := e.insp.ListRetryTasks(queues.Outbound)
			for _, ti := range tasks {
				maxRetried = max(maxRetried, ti.Retried)
			}
			return delivered(e.relay, ids(all)) == len(all)
		}, "every message delivered at Update Ticket's pace")
		elapsed := time.Since(start)
		checkExactlyOnce(t, e.fake, want)
		// 20 updates at 70 a minute after a burst of 7: at least 13 × 857ms.
		if elapsed < 10*time.Second {
			t.Errorf("20 updates took %s, want at least 10s (70%% of Update Ticket's 100 a minute)", elapsed)
		}
		if n := countSince(e.fake, time.Time{}, func(r zendesktest.RecordedRequest) bool { return r.Status == 429 }); n != 0 {
			t.Errorf("Zendesk answered 429 %d times, want none: the relay must stay within its share", n)
		}
		if maxRetried != 0 {
			t.Errorf("asynq counted %d retries, want 0 (waiting for the budget is not a failed attempt)", maxRetried)
		}
	})
}
