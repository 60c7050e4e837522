package inbound_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/httpx"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/internal/testutil"
)

func TestWebhook(t *testing.T) {
	t.Run("AgentCommentDeliveredOnceAndSigned", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		h.link("conv_42", 1001)
		at := time.Now().UTC().Truncate(time.Second)
		body := commentBody(1001, 555, "conv_42", true, true, at)
		if r := h.send(body, "inv-1"); !strings.Contains(r.Body, "accepted") {
			t.Fatalf("answer %s", r.Body)
		}
		testutil.WaitFor(t, 10*time.Second, func() bool { return len(h.sink.events()) == 1 }, "one delivery")
		// the same invocation again (Zendesk retry), and the same event in a
		// new invocation (Zendesk may invoke twice)
		if r := h.send(body, "inv-1"); r.Status != http.StatusOK {
			t.Fatalf("repeat answered %d", r.Status)
		}
		h.send(body, "inv-2")
		h.send(body, "")
		h.idle(10 * time.Second)
		got := h.sink.events()
		if len(got) != 1 {
			t.Fatalf("sink got %d deliveries, want 1: %v", len(got), h.sink.ids())
		}
		ev := got[0]
		if ev.ID != "zd:comment:555" || ev.Type != events.TypeCommentAdded || ev.ConversationID != "conv_42" || ev.TicketID != 1001 ||
			ev.Status != "open" || ev.Source != events.SourceWebhook || ev.Comment == nil || ev.Comment.Body != "reply 555" ||
			ev.Comment.Author.Role != events.RoleAgent || !ev.Comment.Public || !ev.OccurredAt.Equal(at) {
			t.Fatalf("delivered %+v", ev)
		}
		if n := h.sink.attemptsOf(ev.ID); n != 1 {
			t.Fatalf("sink saw %d attempts, want 1", n)
		}
		metrics := []struct {
			name, label string
			want        float64
		}{
			{"deskrelay_inbound_webhooks_accepted_total", "accepted", 4},
			{"deskrelay_inbound_events_total", "invocation", 1}, // inv-1 again
			{"deskrelay_inbound_sink_deliveries_total", "delivered", 1},
			{"deskrelay_inbound_events_total", "enqueued", 1},
		}
		for _, m := range metrics {
			if got := h.metric(m.name, m.label); got != m.want {
				t.Errorf("%s{%s} = %v, want %v", m.name, m.label, got, m.want)
			}
		}
		testutil.WaitFor(t, 5*time.Second, func() bool {
			last, ok, err := inbound.LastWebhookAt(context.Background(), h.rdb, keys.Default)
			return err == nil && ok && time.Since(last) < time.Minute
		}, "the last webhook time")
	})

	t.Run("RejectedRequestsDeliverNothing", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		h.link("conv_42", 1001)
		now := time.Now()
		good := commentBody(1001, 556, "conv_42", true, true, now)
		tests := []struct {
			name     string
			body     []byte
			secret   string
			ts       time.Time
			want     int
			wantCode string
		}{
			{"BadSignature401", good, "wrong-secret", now, http.StatusUnauthorized, "bad_signature"},
			{"StaleTimestamp401", good, webhookSecret, now.Add(-6 * time.Minute), http.StatusUnauthorized, "bad_signature"},
			{"FutureTimestamp401", good, webhookSecret, now.Add(6 * time.Minute), http.StatusUnauthorized, "bad_signature"},
			{"Oversized413", append(bytes.Repeat([]byte(" "), 1<<20), good...), webhookSecret, now, http.StatusRequestEntityTooLarge, "too_large"},
			{"NotJSON400", []byte("<html>"), webhookSecret, now, http.StatusBadRequest, "malformed"},
			{"UnknownShape400", []byte(`{"say":"hello"}`), webhookSecret, now, http.StatusBadRequest, "malformed"},
			{"CommentWithoutID400", []byte(`{"type":"zen:event-type:ticket.comment_added","time":"2026-11-24T10:05:00Z","detail":{"id":"1001"},"event":{"comment":{}}}`), webhookSecret, now, http.StatusBadRequest, "malformed"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := h.post(tt.body, tt.secret, tt.ts, "")
				if r.Status != tt.want {
					t.Fatalf("status %d, want %d (%s)", r.Status, tt.want, r.Body)
				}
				var eb httpx.ErrorBody
				if err := json.Unmarshal([]byte(r.Body), &eb); err != nil || eb.Error.Code != tt.wantCode || eb.Error.Message == "" {
					t.Fatalf("error body %s (%v), want code %q with a message", r.Body, err, tt.wantCode)
				}
			})
		}
		// the signed malformed bodies ended the first run; a new one starts
		h.post(good, "wrong-secret", now, "")
		h.post(good, "wrong-secret", now, "")
		testutil.WaitFor(t, 5*time.Second, func() bool {
			sf, err := inbound.ReadSignatureFailures(context.Background(), h.rdb, keys.Default)
			return err == nil && sf.Run == 2 && !sf.FirstAt.IsZero() && !sf.LastAt.IsZero()
		}, "a run of 2 signature failures")
		h.idle(5 * time.Second)
		if ids := h.sink.ids(); len(ids) != 0 {
			t.Fatalf("sink got %v, want nothing", ids)
		}
		for reason, want := range map[string]float64{"signature": 3, "timestamp": 2, "too_large": 1, "malformed": 3} {
			if got := h.metric("deskrelay_inbound_webhooks_rejected_total", reason); got != want {
				t.Errorf("rejected{%s} = %v, want %v", reason, got, want)
			}
		}
		// a good signature ends the run
		h.send(statusBody(1001, "PENDING", now), "")
		testutil.WaitFor(t, 5*time.Second, func() bool {
			sf, err := inbound.ReadSignatureFailures(context.Background(), h.rdb, keys.Default)
			return err == nil && sf.Run == 0
		}, "the run to end")
	})

	t.Run("IgnoredTypeAnswered200", func(t *testing.T) {
		h := newHarness(t, harnessOptions{noWorkers: true})
		r := h.send([]byte(`{"type":"zen:event-type:ticket.priority_changed","detail":{"id":"1001"},"event":{}}`), "")
		if !strings.Contains(r.Body, "ignored") {
			t.Fatalf("answer %s", r.Body)
		}
	})
}

func TestNoEcho(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.link("conv_42", 1001)
	ctx := context.Background()
	if err := h.tickets.RememberOwnComment(ctx, 700); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		name string
		body []byte
	}{
		{"OwnCommentNotEchoed", commentBody(1001, 700, "conv_42", true, true, now)},
		{"EndUserCommentNotForwarded", commentBody(1001, 701, "conv_42", false, true, now)},
		{"PrivateNoteNotForwarded", commentBody(1001, 702, "conv_42", true, false, now)},
		{"UnmanagedTicketNotForwarded", commentBody(2002, 703, "conv_x", true, true, now)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { h.send(tt.body, "") })
	}
	h.send(commentBody(1001, 704, "conv_42", true, true, now.Add(time.Second)), "")
	testutil.WaitFor(t, 10*time.Second, func() bool { return len(h.sink.events()) == 1 }, "the forwardable comment")
	h.idle(5 * time.Second)
	if ids := h.sink.ids(); len(ids) != 1 || ids[0] != "zd:comment:704" {
		t.Fatalf("sink got %v, want only zd:comment:704", ids)
	}
}

func TestSinkFailures(t *testing.T) {
	t.Run("Sink503ThenDeliveredOnce", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		h.link("conv_42", 1001)
		h.sink.setRespond(func(ev events.Event, attempt int) (int, string) {
			switch {
			case attempt <= 2:
				return http.StatusServiceUnavailable, ""
			case attempt == 3:
				return http.StatusTooManyRequests, "1"
			case attempt == 4:
				return http.StatusInternalServerError, ""
			}
			return http.StatusNoContent, ""
		})
		h.send(commentBody(1001, 600, "conv_42", true, true, time.Now()), "")
		testutil.WaitFor(t, 15*time.Second, func() bool { return len(h.sink.events()) == 1 }, "delivery after recovery")
		h.idle(5 * time.Second)
		if n := h.sink.attemptsOf("zd:comment:600"); n != 5 || len(h.sink.events()) != 1 {
			t.Fatalf("attempts %d, deliveries %d; want 5 and 1", n, len(h.sink.events()))
		}
	})

	t.Run("SinkRedirectIsNotDelivery", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		h.link("conv_42", 1001)
		h.sink.setRespond(func(ev events.Event, attempt int) (int, string) {
			if attempt == 1 {
				return http.StatusFound, ""
			}
			return http.StatusOK, ""
		})
		h.send(commentBody(1001, 620, "conv_42", true, true, time.Now()), "")
		testutil.WaitFor(t, 10*time.Second, func() bool { return len(h.sink.events()) == 1 }, "delivery after the redirect")
		if n := h.sink.attemptsOf("zd:comment:620"); n != 2 {
			t.Fatalf("attempts %d, want 2 (the 302, then the delivery)", n)
		}
	})

	t.Run("Sink410FailedThenReplayed", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		h.link("conv_42", 1001)
		h.link("conv_43", 1002)
		h.sink.setRespond(func(ev events.Event, attempt int) (int, string) {
			if ev.ConversationID == "conv_42" {
				return http.StatusGone, ""
			}
			return http.StatusOK, ""
		})
		now := time.Now()
		h.send(commentBody(1001, 610, "conv_42", true, true, now), "")
		h.send(commentBody(1001, 611, "conv_42", true, true, now.Add(time.Second)), "")
		h.send(commentBody(1002, 612, "conv_43", true, true, now), "")
		ctx := context.Background()
		testutil.WaitFor(t, 10*time.Second, func() bool {
			f, err := sink.Failed(ctx, h.rdb, keys.Default, time.Time{})
			return err == nil && len(f) == 2
		}, "two failed events")
		h.idle(5 * time.Second)
		if ids := h.sink.ids(); len(ids) != 1 || ids[0] != "zd:comment:612" {
			t.Fatalf("sink got %v, want only the other conversation's event", ids)
		}
		failed, _ := sink.Failed(ctx, h.rdb, keys.Default, time.Time{})
		for _, f := range failed {
			if f.Reason != sink.ReasonGone || f.Event.ConversationID != "conv_42" {
				t.Fatalf("failed %+v", f)
			}
		}
		var out strings.Builder
		rep, err := h.recv.Replay(ctx, keys.DefaultAccount, sink.ReplayOptions{Reason: sink.ReasonGone, DryRun: true, Out: &out})
		if err != nil || rep.Found != 2 || !strings.Contains(out.String(), "would replay zd:comment:610") {
			t.Fatalf("dry run %+v %v %q", rep, err, out.String())
		}
		if f, _ := sink.Failed(ctx, h.rdb, keys.Default, time.Time{}); len(f) != 2 {
			t.Fatal("dry run changed the failed set")
		}
		rep, err = h.recv.Replay(ctx, keys.DefaultAccount, sink.ReplayOptions{Reason: sink.ReasonUnauthorized})
		if err != nil || rep.Found != 0 {
			t.Fatalf("replay of another reason %+v %v", rep, err)
		}
		h.sink.setRespond(nil)
		rep, err = h.recv.Replay(ctx, keys.DefaultAccount, sink.ReplayOptions{})
		if err != nil || rep.Replayed != 2 {
			t.Fatalf("replay %+v %v", rep, err)
		}
		testutil.WaitFor(t, 10*time.Second, func() bool { return len(h.sink.events()) == 3 }, "replayed events")
		h.idle(5 * time.Second)
		if ids := h.sink.ids(); fmt.Sprint(ids) != "[zd:comment:612 zd:comment:610 zd:comment:611]" {
			t.Fatalf("sink got %v", ids)
		}
		if f, _ := sink.Failed(ctx, h.rdb, keys.Default, time.Time{}); len(f) != 0 {
			t.Fatalf("failed set still has %d", len(f))
		}
	})
}

func TestOrderPerConversation(t *testing.T) {
	h := newHarness(t, harnessOptions{cfg: func(c *inbound.Config) { c.OrderSettle = 500 * time.Millisecond }})
	h.link("conv_a", 1001)
	h.link("conv_b", 1002)
	// conv_b's sink endpoint is stuck: it must not hold conv_a back
	h.sink.setRespond(func(ev events.Event, attempt int) (int, string) {
		if ev.ConversationID == "conv_b" {
			return http.StatusInternalServerError, ""
		}
		return http.StatusOK, ""
	})
	base := time.Now().Add(-time.Minute).Truncate(time.Second)
	order := []int{4, 1, 7, 0, 9, 3, 2, 8, 6, 5} // arrival order differs from occurrence
	var want []string
	for i := range 10 {
		want = append(want, events.CommentEventID(int64(800+i)))
	}
	// a status change between comments 4 and 5
	want = append(want[:5], append([]string{events.StatusEventID(1001, "pending", base.Add(4*time.Second+500*time.Millisecond))}, want[5:]...)...)
	h.send(commentBody(1002, 900, "conv_b", true, true, base), "")
	for j, i := range order {
		h.send(commentBody(1001, int64(800+i), "conv_a", true, true, base.Add(time.Duration(i)*time.Second)), "")
		if j == 3 {
			h.send(statusBody(1001, "PENDING", base.Add(4*time.Second+500*time.Millisecond)), "")
		}
	}
	testutil.WaitFor(t, 15*time.Second, func() bool { return len(h.sink.events()) == len(want) }, "conv_a's events")
	var got []string
	for _, ev := range h.sink.events() {
		got = append(got, ev.ID)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sink order\n got %v\nwant %v", got, want)
	}
	if h.sink.attemptsOf("zd:comment:900") == 0 {
		t.Fatal("conv_b's event was never attempted")
	}
	// conv_b's next event waits behind the stuck one, then both go, in order
	h.send(commentBody(1002, 901, "conv_b", true, true, base.Add(time.Second)), "")
	h.sink.setRespond(nil)
	testutil.WaitFor(t, 15*time.Second, func() bool { return len(h.sink.events()) == len(want)+2 }, "conv_b's events")
	got = h.sink.ids()[len(want):]
	if fmt.Sprint(got) != "[zd:comment:900 zd:comment:901]" {
		t.Fatalf("conv_b at the sink: %v", got)
	}
}
