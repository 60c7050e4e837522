package relay_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/relay"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// checkTTL asserts that every key exists and expires within (min, max].
func checkTTL(tb testing.TB, rdb redis.UniversalClient, lo, hi time.Duration, ks ...string) {
	tb.Helper()
	for _, k := range ks {
		ttl, err := rdb.PTTL(context.Background(), k).Result()
		switch {
		case err != nil:
			tb.Errorf("%s: %v", k, err)
		case ttl == -2: // go-redis: the key does not exist
			tb.Errorf("%s: missing", k)
		case ttl < 0:
			tb.Errorf("%s: no TTL, want one within (%s, %s]", k, lo, hi)
		case ttl <= lo || ttl > hi:
			tb.Errorf("%s: TTL %s, want within (%s, %s]", k, ttl, lo, hi)
		}
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const retention = 2 * time.Hour
	cfg := relay.Config{Retention: retention, OrderGapTimeout: time.Hour}
	delivered := func(t *testing.T, e *env, m relay.Message) relay.Status {
		t.Helper()
		mustEnqueue(t, e.relay, m)
		waitStatus(t, e.relay, []string{m.ID}, "delivered", 20*time.Second)
		st, err := e.relay.Status(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	convKeys := func(conv string, st relay.Status) []string {
		return []string{keys.Default.Message(st.ID), keys.Default.ConversationOrder(conv), keys.Default.ConversationTicket(conv),
			keys.Default.TicketConversation(st.TicketID), keys.Default.TicketRequester(st.TicketID), keys.Default.OwnComment(st.CommentID)}
	}
	t.Run("EveryKeyOfAnItemExpiresAfterDelivery", func(t *testing.T) {
		e := newEnv(t, envOptions{cfg: cfg})
		m := msg("ttl", 1)
		m.Author = relay.Author{ID: "user-ttl", Name: "Ann Lee"}
		st := delivered(t, e, m)
		checkTTL(t, e.rdb, retention-time.Minute, retention,
			append(convKeys("ttl", st), keys.Default.UserByExternalID("user-ttl"))...)
	})
	t.Run("ActivityRefreshesTheTTL", func(t *testing.T) {
		e := newEnv(t, envOptions{cfg: cfg})
		st := delivered(t, e, msg("refresh", 1))
		for _, k := range convKeys("refresh", st)[1:5] { // the conversation's and its ticket's keys
			e.rdb.PExpire(ctx, k, time.Minute) // time passed
		}
		delivered(t, e, msg("refresh", 2))
		checkTTL(t, e.rdb, retention-time.Minute, retention, convKeys("refresh", st)[1:5]...)
	})
	t.Run("FailedKeptWithoutTTLUntilDelivered", func(t *testing.T) {
		e := newEnv(t, envOptions{cfg: cfg})
		delivered(t, e, msg("failed", 1))
		e.fake.FailNext(1, http.StatusBadRequest, zendesktest.Matching(http.MethodPut, "/api/v2/tickets/"))
		m := msg("failed", 2)
		mustEnqueue(t, e.relay, m)
		waitStatus(t, e.relay, []string{m.ID}, "failed", 20*time.Second)
		if ttl := e.rdb.TTL(ctx, keys.Default.Message(m.ID)).Val(); ttl != -1 {
			t.Errorf("failed message's record TTL = %s, want none (-1)", ttl)
		}
		if _, err := e.relay.Replay(ctx, relay.ReplayOptions{}); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, e.relay, []string{m.ID}, "delivered", 20*time.Second)
		checkTTL(t, e.rdb, retention-time.Minute, retention, keys.Default.Message(m.ID))
	})
	t.Run("ExpiredMappingFindsTicketByExternalID", func(t *testing.T) {
		e := newEnv(t, envOptions{cfg: cfg})
		m1, m2 := msg("refind", 1), msg("refind", 2)
		st := delivered(t, e, m1)
		expire(t, e.rdb, convKeys("refind", st)[1:5]...)
		delivered(t, e, m2)
		checkExactlyOnce(t, e.fake, map[string][]string{"refind": {m1.Body, m2.Body}})
	})
	t.Run("ExpiredMappingOfClosedTicketCreatesFollowUp", func(t *testing.T) {
		e := newEnv(t, envOptions{cfg: cfg})
		st := delivered(t, e, msg("closed", 1))
		e.fake.CloseTicket(st.TicketID)
		expire(t, e.rdb, convKeys("closed", st)[1:5]...)
		st2 := delivered(t, e, msg("closed", 2))
		if st2.TicketID == st.TicketID {
			t.Fatalf("message 2 went to closed ticket %d", st.TicketID)
		}
		if n := len(e.fake.Tickets()); n != 2 {
			t.Errorf("%d tickets, want 2 (the closed one and its follow-up)", n)
		}
	})
	t.Run("ExpiredOrderResumesFromFirstSequenceSeen", func(t *testing.T) {
		e := newEnv(t, envOptions{cfg: cfg}) // OrderGapTimeout 1h: a gap would wait
		st := delivered(t, e, msg("resume", 1))
		expire(t, e.rdb, convKeys("resume", st)[1:5]...)
		m := msg("resume", 7)
		delivered(t, e, m)
		checkExactlyOnce(t, e.fake, map[string][]string{"resume": {msg("resume", 1).Body, m.Body}})
	})
}

// expire deletes keys as their TTL would.
func expire(tb testing.TB, rdb redis.UniversalClient, ks ...string) {
	tb.Helper()
	if err := rdb.Del(context.Background(), ks...).Err(); err != nil {
		tb.Fatal(err)
	}
}
