package tickets_test

import (
	"context"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/tickets"
)

// TestRecordsExpire: every record carries the retention, and an inbound
// look-up of a ticket (an agent's activity) refreshes it.
func TestRecordsExpire(t *testing.T) {
	const retention = 2 * time.Hour
	db := redistest.New(t)
	tk := tickets.New(db.Client).WithRetention(retention)
	ctx := context.Background()
	if err := tk.Link(ctx, "conv_1", 42); err != nil {
		t.Fatal(err)
	}
	if err := tk.RememberOwnComment(ctx, 7); err != nil {
		t.Fatal(err)
	}
	ks := []string{keys.Default.ConversationTicket("conv_1"), keys.Default.TicketConversation(42), keys.Default.OwnComment(7)}
	check := func(ks ...string) {
		t.Helper()
		for _, k := range ks {
			if ttl := db.Client.TTL(ctx, k).Val(); ttl <= retention-time.Minute || ttl > retention {
				t.Errorf("%s: TTL %s, want within (%s, %s]", k, ttl, retention-time.Minute, retention)
			}
		}
	}
	check(ks...)
	db.Client.Expire(ctx, keys.Default.TicketConversation(42), time.Minute) // time passed
	if conv, ok, err := tk.ConversationOf(ctx, 42); err != nil || !ok || conv != "conv_1" {
		t.Fatalf("ConversationOf(42) = %q, %v, %v", conv, ok, err)
	}
	check(keys.Default.TicketConversation(42))
}
