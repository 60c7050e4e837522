package zendesktest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// batchSetup starts a fake with cfg and returns it with a client and n
// open tickets.
func batchSetup(t *testing.T, cfg zendesktest.Config, n int) (*zendesktest.Server, *zendesk.Client, []int64) {
	t.Helper()
	if cfg.JobDelay == 0 {
		cfg.JobDelay = 10 * time.Millisecond
	}
	srv := zendesktest.NewServer(t, cfg)
	c, err := zendesk.New(zendesk.Config{BaseURL: srv.URL(), Email: srv.Email(), APIToken: srv.APIToken(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i := range n {
		ids = append(ids, srv.CreateTicket(zendesk.NewTicket{Subject: fmt.Sprintf("T%d", i),
			Comment: zendesk.CommentInput{Body: "hi", Public: true}, ExternalID: fmt.Sprintf("conv_%d", i)}))
	}
	return srv, c, ids
}

// finish waits for the fake's jobs and returns job id's final status.
func finish(t *testing.T, srv *zendesktest.Server, c *zendesk.Client, id string) *zendesk.JobStatus {
	t.Helper()
	if !srv.WaitJobs(5 * time.Second) {
		t.Fatal("jobs did not finish")
	}
	js, err := c.JobStatus(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !js.Done() || js.Status != zendesk.JobCompleted {
		t.Fatalf("job = %+v", js)
	}
	return js
}

func comment(body, msgID string) (*zendesk.CommentInput, map[string]any) {
	return &zendesk.CommentInput{Body: body, Public: true}, map[string]any{"deskrelay_message_id": msgID}
}

// TestBatchUpdateComments: the job runs in the background; each ticket's
// comment lands in an audit that carries the item's metadata, which is what
// the relay's "was it applied?" check reads; failures are per ticket.
func TestBatchUpdateComments(t *testing.T) {
	srv, c, ids := batchSetup(t, zendesktest.Config{JobDelay: 50 * time.Millisecond}, 3)
	srv.CloseTicket(ids[2])
	var items []zendesk.TicketBatchItem
	for i, id := range append(ids, 999999) {
		cm, md := comment(fmt.Sprintf("reply %d", i), fmt.Sprintf("m%d", i))
		items = append(items, zendesk.TicketBatchItem{ID: id, Comment: cm, Metadata: md})
	}
	js, err := c.UpdateMany(t.Context(), items)
	if err != nil {
		t.Fatal(err)
	}
	if js.Status != zendesk.JobQueued || js.Total != 4 || !strings.HasSuffix(js.URL, "/api/v2/job_statuses/"+js.ID+".json") {
		t.Errorf("answer = %+v", js)
	}
	if got := srv.Comments(ids[0]); len(got) != 1 {
		t.Errorf("ticket has %d comments before the job ran, want 1", len(got))
	}
	js = finish(t, srv, c, js.ID)
	if js.Progress != 4 || len(js.Results) != 4 {
		t.Fatalf("job = %+v", js)
	}
	for i, id := range ids[:2] {
		r, ok := js.Result(id)
		if !ok || !r.Success || r.Status != "Updated" || r.Action != "update" {
			t.Errorf("result %d = %+v", id, r)
		}
		audits := srv.Audits(id)
		last := audits[len(audits)-1]
		if last.Metadata.CustomString("deskrelay_message_id") != fmt.Sprintf("m%d", i) || last.Events[0].Type != "Comment" {
			t.Errorf("ticket %d: last audit = %+v", id, last)
		}
	}
	if r, _ := js.Result(ids[2]); r.Success || !r.Closed() {
		t.Errorf("closed ticket: result = %+v", r)
	}
	if r, _ := js.Result(999999); r.Success || !r.NotFound() {
		t.Errorf("unknown ticket: result = %+v", r)
	}
}

// TestJobLimit: past JobLimit jobs queued or running, update_many answers
// 429 with Retry-After (KindRateLimited in the tickets-update-many family);
// once the jobs end, it takes jobs again.
func TestJobLimit(t *testing.T) {
	srv, c, ids := batchSetup(t, zendesktest.Config{JobLimit: 2, JobDelay: 300 * time.Millisecond}, 3)
	for _, id := range ids[:2] {
		if _, err := c.UpdateMany(t.Context(), []zendesk.TicketBatchItem{{ID: id, Status: "open"}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.UpdateMany(t.Context(), []zendesk.TicketBatchItem{{ID: ids[2], Status: "open"}})
	ze := zendesk.AsError(err)
	if ze == nil || ze.Kind != zendesk.KindRateLimited || ze.Status != 429 || ze.RetryAfter <= 0 || ze.Family != zendesk.FamilyTicketsUpdateMany {
		t.Fatalf("third job: err = %v", err)
	}
	if !srv.WaitJobs(5 * time.Second) {
		t.Fatal("jobs did not finish")
	}
	if _, err := c.UpdateMany(t.Context(), []zendesk.TicketBatchItem{{ID: ids[2], Status: "open"}}); err != nil {
		t.Fatalf("after the jobs ended: %v", err)
	}
}

// TestBatchSpendsUpdateTicketLimit: by the conservative reading each ticket
// of a job spends Update Ticket's budget, and a ticket met with the budget
// spent fails in the results (not applied); with BatchSkipsUpdateLimit all
// go through. The update_many request itself is not Update Ticket.
func TestBatchSpendsUpdateTicketLimit(t *testing.T) {
	for _, skip := range []bool{false, true} {
		t.Run(fmt.Sprintf("skip=%v", skip), func(t *testing.T) {
			srv, c, ids := batchSetup(t, zendesktest.Config{UpdateTicketLimit: 3, BatchSkipsUpdateLimit: skip}, 5)
			var items []zendesk.TicketBatchItem
			for i, id := range ids {
				cm, md := comment("x", fmt.Sprint(i))
				items = append(items, zendesk.TicketBatchItem{ID: id, Comment: cm, Metadata: md})
			}
			js, err := c.UpdateMany(t.Context(), items)
			if err != nil {
				t.Fatal(err)
			}
			js = finish(t, srv, c, js.ID)
			ok, limited := 0, 0
			for _, r := range js.Results {
				switch {
				case r.Success:
					ok++
				case r.RateLimited():
					limited++
					if n := len(srv.Comments(r.ID)); n != 1 {
						t.Errorf("rate-limited ticket %d has %d comments, want 1 (not applied)", r.ID, n)
					}
				}
			}
			want := 3
			if skip {
				want = 5
			}
			if ok != want || ok+limited != 5 {
				t.Errorf("%d updated, %d rate limited; want %d updated", ok, limited, want)
			}
			for _, rq := range srv.Requests() {
				if rq.Method == "PUT" && strings.Contains(rq.Path, "update_many") && rq.Status != 200 {
					t.Errorf("update_many answered %d", rq.Status)
				}
			}
		})
	}
}

// TestBatchPerTicketLimit: a job's update counts against the ticket's own
// limit (30 per 10 minutes per user), shared with Update Ticket.
func TestBatchPerTicketLimit(t *testing.T) {
	srv, c, ids := batchSetup(t, zendesktest.Config{PerTicketUpdateLimit: 2, RateLimit: 1000}, 2)
	for range 2 {
		if _, err := c.AddComment(t.Context(), ids[0], zendesk.CommentInput{Body: "single", Public: true}, nil); err != nil {
			t.Fatal(err)
		}
	}
	js, err := c.UpdateMany(t.Context(), []zendesk.TicketBatchItem{{ID: ids[0], Status: "open"}, {ID: ids[1], Status: "open"}})
	if err != nil {
		t.Fatal(err)
	}
	js = finish(t, srv, c, js.ID)
	if r, _ := js.Result(ids[0]); r.Success || !r.RateLimited() {
		t.Errorf("ticket at its limit: %+v", r)
	}
	if r, _ := js.Result(ids[1]); !r.Success {
		t.Errorf("other ticket: %+v", r)
	}
	if _, err := c.AddComment(t.Context(), ids[1], zendesk.CommentInput{Body: "single", Public: true}, nil); err != nil {
		t.Errorf("second update of the other ticket: %v", err)
	}
	if _, err := c.AddComment(t.Context(), ids[1], zendesk.CommentInput{Body: "single", Public: true}, nil); zendesk.KindOf(err) != zendesk.KindRateLimited {
		t.Errorf("third update of the other ticket (one by the job): err = %v", err)
	}
}

// TestBatchSafeUpdate: Zendesk always safe-updates a job's tickets: a
// ticket changed after the job was queued is not updated (a conflict in the
// results); an explicit updated_stamp is checked against the ticket.
func TestBatchSafeUpdate(t *testing.T) {
	srv, c, ids := batchSetup(t, zendesktest.Config{JobDelay: 200 * time.Millisecond}, 3)
	tk, _ := srv.Ticket(ids[1])
	stale := tk.UpdatedAt.Add(-time.Hour)
	current := tk.UpdatedAt
	js, err := c.UpdateMany(t.Context(), []zendesk.TicketBatchItem{
		{ID: ids[0], Status: "pending"},
		{ID: ids[1], Status: "pending", SafeUpdate: true, UpdatedStamp: &stale},
		{ID: ids[2], Status: "pending", SafeUpdate: true, UpdatedStamp: &current},
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)           // the job waits 200ms
	srv.AgentComment(ids[0], "meanwhile", false) // after the job was queued
	js = finish(t, srv, c, js.ID)
	for i, want := range []bool{false, false, true} {
		r, _ := js.Result(ids[i])
		if r.Success != want || (!want && !r.Conflict()) {
			t.Errorf("ticket %d: result = %+v, want success %v", i, r, want)
		}
	}
	if tk, _ := srv.Ticket(ids[0]); tk.Status == "pending" {
		t.Error("the conflicting update was applied")
	}
}

// TestJobStatusExpires: a job's status is kept JobStatusTTL after the job
// was queued; then 404 (KindNotFound).
func TestJobStatusExpires(t *testing.T) {
	clk := newClock()
	srv, c, ids := batchSetup(t, zendesktest.Config{Now: clk.Now, JobStatusTTL: time.Hour}, 1)
	js, err := c.UpdateMany(t.Context(), []zendesk.TicketBatchItem{{ID: ids[0], Status: "open"}})
	if err != nil {
		t.Fatal(err)
	}
	finish(t, srv, c, js.ID)
	clk.Advance(59 * time.Minute)
	if _, err := c.JobStatus(t.Context(), js.ID); err != nil {
		t.Fatalf("within the hour: %v", err)
	}
	clk.Advance(time.Minute)
	if _, err := c.JobStatus(t.Context(), js.ID); zendesk.KindOf(err) != zendesk.KindNotFound {
		t.Fatalf("after the hour: err = %v", err)
	}
	if _, err := c.JobStatus(t.Context(), "0123456789abcdef0123456789abcdef"); zendesk.KindOf(err) != zendesk.KindNotFound {
		t.Fatalf("unknown job: err = %v", err)
	}
}

// TestUpdateManyRequests: the documented request forms and the refusals.
func TestUpdateManyRequests(t *testing.T) {
	srv, c, ids := batchSetup(t, zendesktest.Config{}, 2)
	r := call(t, srv, "PUT", fmt.Sprintf("/api/v2/tickets/update_many.json?ids=%d,%d", ids[0], ids[1]), map[string]any{"ticket": map[string]any{"status": "solved"}})
	wantStatus(t, r, http.StatusOK)
	var out struct {
		JobStatus zendesk.JobStatus `json:"job_status"`
	}
	r.decode(t, &out)
	if js := finish(t, srv, c, out.JobStatus.ID); len(js.Results) != 2 {
		t.Fatalf("bulk job = %+v", js)
	}
	for _, id := range ids {
		if tk, _ := srv.Ticket(id); tk.Status != "solved" {
			t.Errorf("ticket %d status %q after the bulk update", id, tk.Status)
		}
	}
	tooMany := make([]map[string]any, 101)
	for i := range tooMany {
		tooMany[i] = map[string]any{"id": ids[0], "status": "open"}
	}
	for name, body := range map[string]any{
		"no tickets": map[string]any{},
		"101":        map[string]any{"tickets": tooMany},
		"no id":      map[string]any{"tickets": []map[string]any{{"status": "open"}}},
		"safe only":  map[string]any{"tickets": []map[string]any{{"id": ids[0], "safe_update": true}}},
		"not JSON":   "{",
	} {
		if r := call(t, srv, "PUT", "/api/v2/tickets/update_many", body); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
}
