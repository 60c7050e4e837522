package zendesk

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUpdateManyWire: the request is PUT /api/v2/tickets/update_many with
// {"tickets": [{id, comment{body, public, author_id}, metadata}]}, as
// documented, and the answer's job_status is returned.
func TestUpdateManyWire(t *testing.T) {
	srv, rec := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		writeJSON(w, http.StatusOK, map[string]any{"job_status": map[string]any{
			"id": "8b726e606741012ffc2d782bcb7848fe", "url": "https://x/api/v2/job_statuses/8b726e606741012ffc2d782bcb7848fe.json",
			"total": 2, "progress": nil, "status": "queued", "message": nil, "results": nil}})
	})
	c := mustClient(t, srv.URL, nil)
	js, err := c.UpdateMany(t.Context(), []TicketBatchItem{
		{ID: 11, Comment: &CommentInput{Body: "hello", Public: true, AuthorID: 7}, Metadata: map[string]any{"deskrelay_message_id": "m1"}},
		{ID: 12, Comment: &CommentInput{Body: "note", Public: false}, Status: "open"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if js.ID != "8b726e606741012ffc2d782bcb7848fe" || js.Status != JobQueued || js.Total != 2 || js.Done() || len(js.Results) != 0 {
		t.Errorf("job status = %+v", js)
	}
	got := rec.all()
	if len(got) != 1 || got[0].Method != http.MethodPut || got[0].Path != "/api/v2/tickets/update_many" {
		t.Fatalf("requests = %+v", got)
	}
	want := `{"tickets":[{"id":11,"comment":{"body":"hello","public":true,"author_id":7},"metadata":{"deskrelay_message_id":"m1"}},` +
		`{"id":12,"comment":{"body":"note","public":false},"status":"open"}]}`
	if string(got[0].Body) != want {
		t.Errorf("body = %s\nwant %s", got[0].Body, want)
	}
}

// TestUpdateManyRefusesBadBatches: nothing is sent for an empty batch, more
// than 100 items, a repeated or bad id, an empty comment, or safe_update
// without updated_stamp; the error names the problem.
func TestUpdateManyRefusesBadBatches(t *testing.T) {
	srv, rec := mustServer(t, func(w http.ResponseWriter, _ *http.Request, _ recorded) { w.WriteHeader(500) })
	c := mustClient(t, srv.URL, nil)
	many := make([]TicketBatchItem, MaxBatchItems+1)
	for i := range many {
		many[i].ID = int64(i + 1)
	}
	for _, tc := range []struct {
		name  string
		items []TicketBatchItem
		want  string
	}{
		{"empty", nil, "no tickets"},
		{"too many", many, "at most 100"},
		{"zero id", []TicketBatchItem{{ID: 0}}, "tickets[0]: id"},
		{"twice", []TicketBatchItem{{ID: 5}, {ID: 5}}, "tickets[1]: ticket 5 appears twice"},
		{"empty comment", []TicketBatchItem{{ID: 5, Comment: &CommentInput{Body: " "}}}, "comment body is empty"},
		{"safe update without stamp", []TicketBatchItem{{ID: 5, SafeUpdate: true}}, "updated_stamp"},
	} {
		_, err := c.UpdateMany(t.Context(), tc.items)
		ze := AsError(err)
		if ze == nil || ze.Kind != KindInvalid || ze.Status != 0 || !strings.Contains(ze.Message, tc.want) || ze.Family != FamilyTicketsUpdateMany {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
	if _, err := c.UpdateMany(t.Context(), many[:MaxBatchItems]); KindOf(err) != KindTemporary {
		t.Errorf("100 items: err = %v, want the server's 500", err)
	}
	if n := len(rec.all()); n != 1 {
		t.Errorf("%d requests sent, want only the valid batch", n)
	}
}

// TestUpdateManyJobLimit: the job limit's 429 is KindRateLimited in the
// tickets-update-many family, with Retry-After.
func TestUpdateManyJobLimit(t *testing.T) {
	srv, _ := mustServer(t, func(w http.ResponseWriter, _ *http.Request, _ recorded) {
		w.Header().Set("Retry-After", "7")
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": "TooManyJobs", "description": "too many jobs"})
	})
	c := mustClient(t, srv.URL, nil)
	_, err := c.UpdateMany(t.Context(), []TicketBatchItem{{ID: 1, Status: "open"}})
	ze := AsError(err)
	if ze == nil || ze.Kind != KindRateLimited || ze.RetryAfter != 7*time.Second || ze.Family != FamilyTicketsUpdateMany {
		t.Fatalf("err = %#v", ze)
	}
}

// TestJobStatusWire: GET /api/v2/job_statuses/{id}; per-ticket results are
// read leniently; 404 (an expired job) is KindNotFound.
func TestJobStatusWire(t *testing.T) {
	srv, rec := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
		if strings.HasSuffix(r.URL.Path, "/gone") {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "RecordNotFound", "description": "Not found"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"job_status":{"id":"abc","url":"u","total":4,"progress":4,"status":"completed",
			"message":"Completed at 2026-12-02 10:00:00 +0000","results":[
			{"id":1,"index":0,"action":"update","success":true,"status":"Updated"},
			{"id":2,"index":1,"action":"update","success":false,"status":"Failed","error":"RecordInvalid","details":"Status: closed prevents ticket update"},
			{"id":3,"action":"update","success":false,"errors":["Rate limit for ticket updates exceeded"]},
			{"id":"4","success":false,"error":"UpdateConflict","details":{"base":"outdated"}}]}}`))
	})
	c := mustClient(t, srv.URL, nil)
	js, err := c.JobStatus(t.Context(), "abc")
	if err != nil {
		t.Fatal(err)
	}
	if rec.all()[0].Path != "/api/v2/job_statuses/abc" || !js.Done() || len(js.Results) != 4 {
		t.Fatalf("job = %+v", js)
	}
	r1, _ := js.Result(1)
	r2, _ := js.Result(2)
	r3, _ := js.Result(3)
	r4, ok := js.Result(4)
	switch {
	case !r1.Success || r1.Closed() || *r1.Index != 0:
		t.Errorf("result 1 = %+v", r1)
	case !r2.Closed() || r2.RateLimited():
		t.Errorf("result 2 = %+v", r2)
	case !r3.RateLimited() || !strings.Contains(r3.Details, "Rate limit"):
		t.Errorf("result 3 = %+v", r3)
	case !ok || !r4.Conflict():
		t.Errorf("result 4 = %+v", r4)
	}
	if _, ok := js.Result(9); ok {
		t.Error("Result(9) found a result")
	}
	if _, err := c.JobStatus(t.Context(), "gone"); KindOf(err) != KindNotFound || AsError(err).Family != FamilyJobStatuses {
		t.Errorf("expired job: err = %v", err)
	}
	if _, err := c.JobStatus(t.Context(), "a/b"); KindOf(err) != KindInvalid {
		t.Errorf("bad id: err = %v", err)
	}
}

// TestJobResultsOfOtherJobs: a results object (permanent deletion) or null
// gives no results rather than an error.
func TestJobResultsOfOtherJobs(t *testing.T) {
	for _, body := range []string{`{"results":{"success":true}}`, `{"results":null}`, `{}`} {
		var js JobStatus
		if err := json.Unmarshal([]byte(body), &js); err != nil || len(js.Results) != 0 {
			t.Errorf("%s: %+v, %v", body, js, err)
		}
	}
}
