package sink

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/tickets"
)

// TestDiscard: failed sink deliveries go for good (kept event, failed-set
// entry, archived task) when they match, and stay when they do not.
func TestDiscard(t *testing.T) {
	db := redistest.New(t)
	ctx := context.Background()
	pub := NewPublisher(db.Client, tickets.New(db.Client), PublisherConfig{})
	d := &Deliverer{rdb: db.Client, cfg: DeliverConfig{Now: time.Now}}
	gone := events.NewStatusEvent(1001, "PENDING", time.Now(), events.SourceWebhook)
	gone.ConversationID = "conv_1"
	unauth := events.NewStatusEvent(1002, "SOLVED", time.Now(), events.SourceWebhook)
	unauth.ConversationID = "conv_2"
	if err := d.archive(ctx, pub, gone, ReasonGone, errors.New("410")); err != nil {
		t.Fatal(err)
	}
	if err := d.archive(ctx, pub, unauth, ReasonUnauthorized, errors.New("401")); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(db.AsynqOpt())
	defer insp.Close()
	var out bytes.Buffer
	n, err := Discard(ctx, db.Client, insp, DiscardOptions{Reason: ReasonGone, DryRun: true, Out: &out})
	if err != nil || n != 1 || !strings.Contains(out.String(), "would discard "+gone.ID) {
		t.Fatalf("dry run: %d, %v, out %q", n, err, out.String())
	}
	n, err = Discard(ctx, db.Client, insp, DiscardOptions{Reason: ReasonGone, Out: &out})
	if err != nil || n != 1 {
		t.Fatalf("discard: %d, %v", n, err)
	}
	left, err := Failed(ctx, db.Client, keys.Default, time.Time{})
	if err != nil || len(left) != 1 || left[0].Event.ID != unauth.ID {
		t.Fatalf("left after discarding gone: %+v, %v; want only %s", left, err, unauth.ID)
	}
	if db.Client.Exists(ctx, keys.Default.InboundFailedEvent(gone.ID)).Val() != 0 {
		t.Error("the discarded event is still kept")
	}
	if n, _ := db.Client.ZCard(ctx, keys.Default.Failed(queues.Inbound)).Result(); n != 1 {
		t.Errorf("failed set holds %d, want 1", n)
	}
}
