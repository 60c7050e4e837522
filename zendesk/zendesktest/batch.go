package zendesktest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
)

// Update Many Tickets and job statuses, as docs/zendesk.md ("Batch updates
// (update_many) and job statuses") describes them, with the conservative
// reading where Zendesk's documentation is silent: a job's tickets spend
// Update Ticket's budget (unless Config.BatchSkipsUpdateLimit) and the
// per-ticket limit, a ticket changed after the job was queued is not
// updated (Zendesk always safe-updates batch jobs), and a failed ticket is
// reported in the job's results, never as the request's status.

// maxBatch is the most tickets one update_many request takes.
const maxBatch = 100

// jobStatusKeep is how many job statuses the fake keeps: "Zendesk only
// logs the last 100 jobs" (quoted from an earlier reference in Zendesk's
// community; docs/zendesk.md).
const jobStatusKeep = 100

// tooManyJobsDescription is the description of the job limit's 429 (the
// body is not documented; the status and Retry-After follow the rate-limit
// page's rule for every 429).
const tooManyJobsDescription = "Too many background jobs are queued or running for this account; retry later"

// Failure codes and texts of a job's per-ticket results. Zendesk documents
// the results' id, action, success and status; the shape of a failure
// ("error" with a code, "details" with a text) is the fake's reading.
const (
	conflictDetails = "Safe Update prevented the update due to outdated ticket data. Please fetch the latest ticket data and try again."
	closedDetails   = "Status: closed prevents ticket update"
)

// batchItem is one ticket of an update_many request.
type batchItem struct {
	ID int64 `json:"id"`
	ticketIn
}

// batchJob is one background job of update_many.
type batchJob struct {
	id       string
	user     *user
	system   map[string]any
	queuedAt time.Time
	items    []batchItem
	status   string // queued, working, completed
	results  []map[string]any
	message  string
}

func (j *batchJob) active() bool { return j.status == "queued" || j.status == "working" }

// handleUpdateMany queues a job: a batch ({"tickets": [{id, …}]}) or a bulk
// update (?ids=1,2 with {"ticket": {…}}).
func handleUpdateMany(s *Server, r *request, w *resp) {
	items, ok := batchItems(r, w)
	if !ok {
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneJobsLocked(now)
	active := 0
	for _, j := range s.jobs {
		if j.active() {
			active++
		}
	}
	if active >= s.cfg.JobLimit {
		w.errorJSON(http.StatusTooManyRequests, "TooManyJobs", tooManyJobsDescription, nil)
		w.header.Set("Retry-After", strconv.Itoa(ceilSeconds(s.cfg.JobDelay+time.Duration(maxBatch)*s.cfg.JobItemDelay)))
		return
	}
	j := &batchJob{id: newRequestID(), user: r.user, system: systemMeta(r), queuedAt: now, items: items, status: "queued"}
	s.jobs[j.id] = j
	s.jobOrder = append(s.jobOrder, j.id)
	s.wg.Add(1)
	go s.runJob(j)
	w.json(http.StatusOK, map[string]any{"job_status": s.jobJSON(j)})
}

// batchItems reads an update_many request, or answers 400.
func batchItems(r *request, w *resp) ([]batchItem, bool) {
	var in struct {
		Tickets []batchItem `json:"tickets"`
		Ticket  *ticketIn   `json:"ticket"`
	}
	if !decode(r, w, &in) {
		return nil, false
	}
	items := in.Tickets
	if ids := r.query.Get("ids"); ids != "" {
		if in.Ticket == nil {
			w.errorJSON(http.StatusBadRequest, "InvalidValue", "ticket parameter missing", nil)
			return nil, false
		}
		items = nil
		for _, f := range strings.Split(ids, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil {
				w.errorJSON(http.StatusBadRequest, "InvalidValue", "ids must be a comma-separated list of ticket ids", nil)
				return nil, false
			}
			items = append(items, batchItem{ID: id, ticketIn: *in.Ticket})
		}
	}
	switch {
	case len(items) == 0:
		w.errorJSON(http.StatusBadRequest, "InvalidValue", "tickets parameter missing", nil)
	case len(items) > maxBatch:
		w.errorJSON(http.StatusBadRequest, "InvalidValue", fmt.Sprintf("Too many tickets: at most %d per request", maxBatch), nil)
	default:
		for i, it := range items {
			switch {
			case it.ID <= 0:
				w.errorJSON(http.StatusBadRequest, "InvalidValue", fmt.Sprintf("tickets[%d]: id is required", i), nil)
				return nil, false
			case it.SafeUpdate && it.UpdatedStamp == nil && r.query.Get("ids") == "":
				w.errorJSON(http.StatusBadRequest, "InvalidValue", fmt.Sprintf("tickets[%d]: safe_update requires updated_stamp", i), nil)
				return nil, false
			}
		}
		return items, true
	}
	return nil, false
}

// runJob works a job in the background: queued for JobDelay, then one
// ticket after another (JobItemDelay apart), then completed.
func (s *Server) runJob(j *batchJob) {
	defer s.wg.Done()
	if !s.pause(s.cfg.JobDelay) {
		return
	}
	s.mu.Lock()
	j.status, j.results = "working", []map[string]any{}
	s.mu.Unlock()
	for i := range j.items {
		if i > 0 && !s.pause(s.cfg.JobItemDelay) {
			return
		}
		s.mu.Lock()
		res, notes := s.applyBatchItemLocked(j, i, s.now())
		j.results = append(j.results, res)
		s.notifyAsyncLocked(notes)
		s.mu.Unlock()
	}
	s.mu.Lock()
	j.status = "completed"
	j.message = "Completed at " + s.now().Format("2006-01-02 15:04:05 -0700")
	s.mu.Unlock()
}

// pause waits d; false when the server is closing.
func (s *Server) pause(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stop:
		return false
	}
}

// applyBatchItemLocked updates one ticket of a job, as Update Ticket would,
// and returns its result.
func (s *Server) applyBatchItemLocked(j *batchJob, i int, now time.Time) (map[string]any, []notice) {
	it := j.items[i]
	res := map[string]any{"id": it.ID, "index": i, "action": "update"}
	failed := func(code, details string) (map[string]any, []notice) {
		res["success"], res["status"], res["error"], res["details"] = false, "Failed", code, details
		return res, nil
	}
	t := s.tickets[it.ID]
	if t == nil || t.deleted {
		return failed("RecordNotFound", "Not found")
	}
	if !s.cfg.BatchSkipsUpdateLimit {
		if _, rem, _ := s.updates.peek(s.cfg.UpdateTicketLimit, s.cfg.Window, now); rem <= 0 {
			return failed("TooManyRequests", updateRateLimitedPage)
		}
		s.updates.used++
	}
	if _, ok := s.takePerTicketLocked(t.id, j.user.id, now); !ok {
		return failed("TooManyRequests", updateRateLimitedPage)
	}
	if code, details := s.batchProblemLocked(j, t, it); code != "" {
		return failed(code, details)
	}
	if it.Subject != nil {
		t.subject = *it.Subject
	}
	if it.CustomFields != nil {
		t.customFields = it.CustomFields
	}
	_, notes := s.applyLocked(t, change{author: j.user, channel: "api", comment: it.Comment, status: it.Status,
		metadata: it.Metadata, system: j.system, tags: it.Tags}, now)
	res["success"], res["status"] = true, "Updated"
	return res, notes
}

// batchProblemLocked is why Zendesk would refuse one ticket's update, as
// an error code and a text, or "" when it would not.
func (s *Server) batchProblemLocked(j *batchJob, t *ticket, it batchItem) (string, string) {
	// Zendesk always safe-updates a job's tickets: against the item's own
	// updated_stamp, or else against the time the job was queued.
	explicit := it.SafeUpdate && it.UpdatedStamp != nil
	switch {
	case t.status == "closed":
		return "RecordInvalid", closedDetails
	case explicit && !it.UpdatedStamp.Truncate(time.Second).Equal(t.updatedAt.Truncate(time.Second)):
		return "UpdateConflict", conflictDetails
	case !explicit && t.updatedAt.After(j.queuedAt):
		return "UpdateConflict", conflictDetails
	case it.Status != "" && !validStatuses[it.Status]:
		return "RecordInvalid", "Status: is not valid"
	case it.Comment == nil:
		return "", ""
	case it.Comment.Body == "" && it.Comment.HTMLBody == "":
		return "RecordInvalid", "Comment: cannot be blank"
	case it.Comment.AuthorID != 0 && s.users[it.Comment.AuthorID] == nil:
		return "RecordInvalid", "Author: is invalid"
	case len(t.comments) >= s.cfg.MaxComments:
		return "RecordInvalid", fmt.Sprintf(commentLimitDescription, s.cfg.MaxComments)
	}
	return "", ""
}

func (s *Server) jobJSON(j *batchJob) map[string]any {
	var results, message any
	if j.results != nil {
		results = j.results
	}
	if j.message != "" {
		message = j.message
	}
	return map[string]any{
		"id": j.id, "url": fmt.Sprintf("%s/api/v2/job_statuses/%s.json", s.base(), j.id),
		"total": len(j.items), "progress": len(j.results), "status": j.status, "message": message, "results": results,
	}
}

// pruneJobsLocked forgets the statuses of jobs queued more than
// JobStatusTTL ago, and of ended jobs beyond the last jobStatusKeep.
func (s *Server) pruneJobsLocked(now time.Time) {
	keep := s.jobOrder[:0]
	for i, id := range s.jobOrder {
		j := s.jobs[id]
		old := !now.Before(j.queuedAt.Add(s.cfg.JobStatusTTL))
		tooMany := len(s.jobOrder)-i > jobStatusKeep
		if !j.active() && (old || tooMany) {
			delete(s.jobs, id)
			continue
		}
		keep = append(keep, id)
	}
	s.jobOrder = keep
}

func handleShowJobStatus(s *Server, r *request, w *resp) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneJobsLocked(now)
	j := s.jobs[r.params[0]]
	if j == nil || !now.Before(j.queuedAt.Add(s.cfg.JobStatusTTL)) {
		w.notFound()
		return
	}
	w.json(http.StatusOK, map[string]any{"job_status": s.jobJSON(j)})
}

// JobStatus returns a job's status as GET /api/v2/job_statuses/{id} would
// show it (expired ones included until pruned); ok is false for an unknown
// job.
func (s *Server) JobStatus(id string) (zendesk.JobStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[id]
	if j == nil {
		return zendesk.JobStatus{}, false
	}
	return asClient[zendesk.JobStatus](s.jobJSON(j)), true
}

// ActiveJobs returns how many jobs are queued or working.
func (s *Server) ActiveJobs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, j := range s.jobs {
		if j.active() {
			n++
		}
	}
	return n
}

// WaitJobs waits until no job is queued or working, or timeout passes;
// false on timeout.
func (s *Server) WaitJobs(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for s.ActiveJobs() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}
