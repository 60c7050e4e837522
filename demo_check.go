package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// send posts one message to deskrelay as the platform would.
func (d *demo) send(ctx context.Context, conv string, seq int) error {
	m := demoMessage{id: fmt.Sprintf("msg_%s_%d", conv, seq), conv: conv, seq: seq,
		body: fmt.Sprintf("Message %d of %s: the app crashes when I press Save.", seq, conv)}
	body, _ := json.Marshal(map[string]any{
		"id": m.id, "conversation_id": conv, "sequence": seq, "body": m.body,
		"author":  map[string]string{"id": "user_" + conv, "name": "Customer " + conv, "email": conv + "@example.com"},
		"subject": "Crash on Save (" + conv + ")",
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/v1/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+demoIngestToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("demo: post %s: %w", m.id, err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("demo: post %s: %d %s", m.id, resp.StatusCode, raw)
	}
	d.sent = append(d.sent, m)
	return nil
}

// messageStatus asks deskrelay where a message is (GET /v1/messages/{id}).
func (d *demo) messageStatus(ctx context.Context, id string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/v1/messages/"+url.PathEscape(id), nil)
	req.Header.Set("Authorization", "Bearer "+demoIngestToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "unknown"
	}
	defer resp.Body.Close()
	var st struct {
		Status string `json:"status"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return st.Status
}

// statusCounts counts msgs by the status deskrelay gives them.
func (d *demo) statusCounts(ctx context.Context, msgs []demoMessage) map[string]int {
	counts := map[string]int{}
	for _, m := range msgs {
		counts[d.messageStatus(ctx, m.id)]++
	}
	return counts
}

func formatCounts(c map[string]int) string {
	var parts []string
	for k, v := range c {
		parts = append(parts, fmt.Sprintf("%d %s", v, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func (d *demo) waitDelivered(ctx context.Context, msgs []demoMessage, what string) error {
	return d.waitFor(ctx, fmt.Sprintf("%s to reach Zendesk (%d messages)", what, len(msgs)), func() bool {
		return d.statusCounts(ctx, msgs)["delivered"] == len(msgs)
	})
}

// waitSink waits until the platform has n distinct events in all.
func (d *demo) waitSink(ctx context.Context, n int, what string) error {
	return d.waitFor(ctx, fmt.Sprintf("%s (%d events in all at the platform)", what, n), func() bool { return d.sink.unique() >= n })
}

// waitFor says what it waits for, then polls cond until it holds or the
// step's time is up.
func (d *demo) waitFor(ctx context.Context, what string, cond func() bool) error {
	d.say("waiting for %s …", what)
	deadline := time.Now().Add(d.t.stepTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: gave up after %s waiting for %s (deskrelay's log: %s)", d.t.stepTimeout, what, d.logPath)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// outbound is what Zendesk holds of the messages sent.
type outbound struct {
	delivered, duplicates, outOfOrder int
}

// checkZendesk finds every message sent in its conversation's ticket, and
// counts the missing, the duplicated and the out of order.
func (d *demo) checkZendesk() outbound {
	seen := map[string]int{}
	var o outbound
	for _, tk := range d.managedTickets() {
		last := 0
		for _, c := range d.zd.Comments(tk.ID) {
			for _, m := range d.sent {
				if m.conv == tk.ExternalID && strings.TrimSpace(c.Body) == m.body {
					seen[m.id]++
					if m.seq < last {
						o.outOfOrder++
					}
					last = m.seq
				}
			}
		}
	}
	for _, m := range d.sent {
		if seen[m.id] > 0 {
			o.delivered++
		}
		if seen[m.id] > 1 {
			o.duplicates += seen[m.id] - 1
		}
	}
	return o
}

// summary checks Zendesk and the sink against what was sent and what agents
// did, prints the table, and reports whether nothing was lost or duplicated.
func (d *demo) summary() bool {
	o := d.checkZendesk()
	in := d.sink.stats()
	w := tabwriter.NewWriter(d.env.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "messages sent to deskrelay\t%d\t\n", len(d.sent))
	fmt.Fprintf(w, "sent before the outage\t%d\t\n", len(d.beforeOutage))
	fmt.Fprintf(w, "sent during the outage\t%d\t\n", len(d.duringOutage))
	fmt.Fprintf(w, "messages in Zendesk\t%d\t\n", o.delivered)
	fmt.Fprintf(w, "duplicate comments in Zendesk\t%d\t\n", o.duplicates)
	fmt.Fprintf(w, "comments out of order\t%d\t\n", o.outOfOrder)
	fmt.Fprintf(w, "agent replies and status changes\t%d\t\n", d.wantEvents)
	fmt.Fprintf(w, "received by the platform via the target\t%d\t\n", in.viaWebhook)
	fmt.Fprintf(w, "received by the platform via the reconciler\t%d\t\n", in.viaReconcile)
	fmt.Fprintf(w, "duplicate deliveries to the platform\t%d\t\n", in.duplicates)
	fmt.Fprintf(w, "echoes of the platform's own messages\t%d\t\n", in.echoes)
	fmt.Fprintf(w, "deliveries with a bad signature\t%d\t\n", in.badSig)
	fmt.Fprintf(w, "time to drain the outage backlog\t%.1fs\t\n", d.drainTime.Seconds())
	_ = w.Flush()
	lost := len(d.sent) - o.delivered + d.wantEvents - (in.viaWebhook + in.viaReconcile)
	ok := lost == 0 && o.duplicates == 0 && in.duplicates == 0 && o.outOfOrder == 0 && in.echoes == 0 && in.badSig == 0
	if ok {
		fmt.Fprintln(d.env.stdout, "\nNothing lost, nothing duplicated, nothing out of order.")
	} else {
		fmt.Fprintf(d.env.stdout, "\nFAILED: %d lost, %d duplicated comments, %d duplicated deliveries, %d out of order, %d echoes, %d bad signatures (deskrelay's log: %s)\n",
			lost, o.duplicates, in.duplicates, o.outOfOrder, in.echoes, in.badSig, d.logPath)
	}
	return ok
}
