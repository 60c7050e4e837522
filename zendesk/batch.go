package zendesk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MaxBatchItems is the most tickets one Update Many Tickets request takes
// (documented: "an array of up to 100 ticket objects").
const MaxBatchItems = 100

// TicketBatchItem is one ticket's change in a batch update (Update Many
// Tickets with a "tickets" array): the ticket's id and, like TicketUpdate,
// a comment, a status, custom metadata for the change's audit.
// https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-many-tickets
type TicketBatchItem struct {
	ID       int64          `json:"id"`
	Comment  *CommentInput  `json:"comment,omitempty"`
	Status   string         `json:"status,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
	// SafeUpdate with UpdatedStamp: apply only if the ticket was last
	// updated at UpdatedStamp. Zendesk requires both together in a batch.
	// Without them Zendesk still checks the ticket against the time the
	// job was queued (docs/zendesk.md).
	SafeUpdate   bool       `json:"safe_update,omitempty"`
	UpdatedStamp *time.Time `json:"updated_stamp,omitempty"`
}

// Job status values (JobStatus.Status).
const (
	JobQueued    = "queued"
	JobWorking   = "working"
	JobCompleted = "completed"
	JobFailed    = "failed"
	JobKilled    = "killed"
)

// JobStatus is a background job's state, as Update Many Tickets answers it
// and Show Job Status reports it.
// https://developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/
type JobStatus struct {
	ID       string `json:"id"`
	URL      string `json:"url"`
	JobType  string `json:"job_type,omitempty"`
	Status   string `json:"status"` // JobQueued, JobWorking, JobCompleted, JobFailed, JobKilled
	Total    int    `json:"total"`
	Progress int    `json:"progress"`
	Message  string `json:"message"`
	// Results holds one entry per processed ticket, in no promised order;
	// it is empty while the job is queued (and for jobs whose results are
	// one object rather than a list).
	Results JobResults `json:"results"`
}

// Done reports whether the job has ended (completed, failed or killed):
// its results will not change any more.
func (j *JobStatus) Done() bool {
	switch j.Status {
	case JobCompleted, JobFailed, JobKilled:
		return true
	}
	return false
}

// Result returns the result for ticket id, if the job has processed it.
func (j *JobStatus) Result(id int64) (JobResult, bool) {
	for _, r := range j.Results {
		if r.ID == id {
			return r, true
		}
	}
	return JobResult{}, false
}

// JobResults is a job status's "results": a list of per-item results. A
// job whose results are a single object (permanent ticket deletion) or
// null gives an empty list.
type JobResults []JobResult

// UnmarshalJSON accepts a list, an object or null.
func (rs *JobResults) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '[' {
		*rs = nil
		return nil
	}
	var list []JobResult
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*rs = list
	return nil
}

// JobResult is what a job did with one ticket: for a bulk or batch update
// "id", "action" ("update"), "success" and "status" ("Updated") are
// documented; a failed item's "error" and "details" are as recorded by the
// fake's conservative reading (docs/zendesk.md).
type JobResult struct {
	ID      int64  `json:"id"`
	Index   *int   `json:"index,omitempty"`
	Action  string `json:"action,omitempty"`
	Success bool   `json:"success"`
	Status  string `json:"status,omitempty"`
	// Error is the failure's code (e.g. "RecordInvalid"); Details its text.
	// Older answers carry the text in "errors" instead: it lands in Details.
	Error   string `json:"error,omitempty"`
	Details string `json:"details,omitempty"`
}

// UnmarshalJSON reads a result leniently: "errors" and "details" may be a
// string, a list or an object.
func (r *JobResult) UnmarshalJSON(b []byte) error {
	var raw struct {
		ID      json.Number     `json:"id"`
		Index   *int            `json:"index"`
		Action  string          `json:"action"`
		Success bool            `json:"success"`
		Status  string          `json:"status"`
		Error   json.RawMessage `json:"error"`
		Errors  json.RawMessage `json:"errors"`
		Details json.RawMessage `json:"details"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	id, _ := raw.ID.Int64()
	*r = JobResult{ID: id, Index: raw.Index, Action: raw.Action, Success: raw.Success, Status: raw.Status,
		Error: rawText(raw.Error), Details: rawText(raw.Details)}
	if r.Details == "" {
		r.Details = rawText(raw.Errors)
	}
	return nil
}

// rawText is a JSON value as text: a string as is, null as "", anything
// else as its JSON.
func rawText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func (r JobResult) text() string { return strings.ToLower(r.Error + " " + r.Details) }

// Closed reports whether the item failed because the ticket is closed.
func (r JobResult) Closed() bool {
	return !r.Success && strings.Contains(r.text(), "closed prevents ticket update")
}

// NotFound reports whether the item failed because the ticket does not
// exist (or was deleted).
func (r JobResult) NotFound() bool {
	t := r.text()
	return !r.Success && (strings.Contains(t, "notfound") || strings.Contains(t, "not found"))
}

// RateLimited reports whether the item failed on a rate limit (Update
// Ticket's, or the ticket's own 30 updates per 10 minutes).
func (r JobResult) RateLimited() bool {
	t := r.text()
	return !r.Success && (strings.Contains(t, "rate limit") || strings.Contains(t, "toomanyrequests"))
}

// Conflict reports whether the item failed a safe update: the ticket
// changed after UpdatedStamp or after the job was queued.
func (r JobResult) Conflict() bool {
	return !r.Success && strings.Contains(r.text(), "updateconflict")
}

// CommentLimit reports whether the item failed because the ticket holds
// the maximum number of comments.
func (r JobResult) CommentLimit() bool {
	t := r.text()
	return !r.Success && !r.Closed() && strings.Contains(t, "comment") &&
		(strings.Contains(t, "limit") || strings.Contains(t, "maximum"))
}

// validBatch checks a batch before it is sent: 1 to MaxBatchItems items,
// each a distinct positive ticket id (the job's results are per id), a
// comment with a body, SafeUpdate only with UpdatedStamp.
func validBatch(items []TicketBatchItem) string {
	switch {
	case len(items) == 0:
		return "no tickets to update"
	case len(items) > MaxBatchItems:
		return fmt.Sprintf("%d tickets: at most %d per request", len(items), MaxBatchItems)
	}
	seen := make(map[int64]bool, len(items))
	for i, it := range items {
		switch {
		case it.ID <= 0:
			return fmt.Sprintf("tickets[%d]: id must be positive", i)
		case seen[it.ID]:
			return fmt.Sprintf("tickets[%d]: ticket %d appears twice (merge its changes into one item)", i, it.ID)
		case it.Comment != nil && strings.TrimSpace(it.Comment.Body) == "":
			return fmt.Sprintf("tickets[%d]: comment body is empty", i)
		case it.SafeUpdate && it.UpdatedStamp == nil:
			return fmt.Sprintf("tickets[%d]: safe_update needs updated_stamp in a batch", i)
		}
		seen[it.ID] = true
	}
	return ""
}

// UpdateMany queues a batch update of up to MaxBatchItems tickets, each
// with its own change, and returns the queued job; JobStatus tells how it
// went, per ticket. Zendesk refuses more jobs than its job limit (30 queued
// or running per account) with 429 (KindRateLimited, FamilyTicketsUpdateMany).
// A batch that is refused before sending is KindInvalid with Status 0.
// https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-many-tickets
func (c *Client) UpdateMany(ctx context.Context, items []TicketBatchItem) (*JobStatus, error) {
	const op = "update many tickets"
	if problem := validBatch(items); problem != "" {
		return nil, &Error{Op: op, Kind: KindInvalid, Message: problem, Family: FamilyTicketsUpdateMany}
	}
	var out struct {
		JobStatus *JobStatus `json:"job_status"`
	}
	if _, err := c.do(ctx, call{op: op, method: http.MethodPut, path: "/api/v2/tickets/update_many",
		body: map[string]any{"tickets": items}, out: &out}); err != nil {
		return nil, err
	}
	if out.JobStatus == nil || out.JobStatus.ID == "" {
		// Sent and accepted, but no job id to follow: the outcome is unknown.
		return nil, &Error{Op: op, Status: http.StatusOK, Kind: KindTemporary, Ambiguous: true,
			Message: "answer holds no job_status.id", Family: FamilyTicketsUpdateMany}
	}
	return out.JobStatus, nil
}

// JobStatus shows a background job. Zendesk keeps a job's status for a
// limited time (docs/zendesk.md: an hour, by the conservative reading);
// after that it answers 404 (KindNotFound), and the outcome must be read
// from the tickets themselves (their audits).
// https://developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/#show-job-status
func (c *Client) JobStatus(ctx context.Context, id string) (*JobStatus, error) {
	const op = "show job status"
	if strings.TrimSpace(id) == "" || strings.ContainsAny(id, "/?#") {
		return nil, &Error{Op: op, Kind: KindInvalid, Message: "job status id is empty or not a single path segment", Family: FamilyJobStatuses}
	}
	var out struct {
		JobStatus *JobStatus `json:"job_status"`
	}
	if _, err := c.do(ctx, call{op: op, method: http.MethodGet, path: "/api/v2/job_statuses/" + url.PathEscape(id), out: &out}); err != nil {
		return nil, err
	}
	if out.JobStatus == nil {
		return nil, &Error{Op: op, Status: http.StatusOK, Kind: KindTemporary, Message: "answer holds no job_status", Family: FamilyJobStatuses}
	}
	return out.JobStatus, nil
}
