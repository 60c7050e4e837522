package zendesktest

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
)

type user struct {
	id         int64
	name       string
	email      string
	externalID string
	role       string // "end-user", "agent", "admin"
	createdAt  time.Time
	updatedAt  time.Time
}

func (u *user) staff() bool { return u.role == "agent" || u.role == "admin" }

type customField struct {
	ID    int64 `json:"id"`
	Value any   `json:"value"`
}

type ticket struct {
	id           int64
	externalID   string
	status       string
	requesterID  int64
	submitterID  int64
	subject      string
	description  string
	tags         []string
	customFields []customField
	via          map[string]any
	createdAt    time.Time
	updatedAt    time.Time
	comments     []*comment
	audits       []*audit
	firstPublic  bool
	deleted      bool
	followupIDs  []int64
}

type comment struct {
	id        int64
	authorID  int64
	auditID   int64
	body      string
	public    bool
	channel   string
	custom    map[string]any
	system    map[string]any
	createdAt time.Time
}

type audit struct {
	id        int64
	ticketID  int64
	authorID  int64
	createdAt time.Time
	channel   string
	custom    map[string]any
	system    map[string]any
	events    []auditEvent
}

type auditEvent struct {
	id      int64
	typ     string // Comment, Create, Change, Notification
	field   string
	value   any // a string, number, numeric string, array or nil, as Zendesk sends
	prev    any
	comment *comment
	notify  *notification
}

// notification is a Notification audit event: a trigger e-mailed someone.
type notification struct {
	subject, body string
	recipients    []int64
	triggerID     int64
	triggerTitle  string
}

// notifyRequesterTrigger is the default trigger Zendesk ships that e-mails
// the requester when an agent adds a public comment.
const (
	notifyRequesterTriggerID    = 360000000001
	notifyRequesterTriggerTitle = "Notify requester of comment update"
)

func (n *notification) json(id int64) map[string]any {
	return map[string]any{
		"id": id, "type": "Notification", "subject": n.subject, "body": n.body, "recipients": n.recipients,
		"via": map[string]any{"channel": "rule", "source": map[string]any{
			"from": map[string]any{"id": n.triggerID, "title": n.triggerTitle, "deleted": false}, "rel": "trigger"}},
	}
}

// ---- users ----

func (s *Server) addUserLocked(name, email, externalID, role string, now time.Time) *user {
	s.nextUser++
	u := &user{id: s.nextUser, name: name, email: strings.ToLower(email), externalID: externalID, role: role, createdAt: now, updatedAt: now}
	s.users[u.id] = u
	if u.email != "" {
		s.usersByEmail[u.email] = u
	}
	if externalID != "" {
		s.usersByExt[externalID] = u
	}
	return u
}

func (s *Server) userJSON(u *user) map[string]any {
	m := map[string]any{
		"id":          u.id,
		"url":         fmt.Sprintf("%s/api/v2/users/%d.json", s.base(), u.id),
		"name":        u.name,
		"email":       nullIfEmpty(u.email),
		"role":        u.role,
		"external_id": nullIfEmpty(u.externalID),
		"active":      true,
		"verified":    u.staff(),
		"created_at":  rfc3339(u.createdAt),
		"updated_at":  rfc3339(u.updatedAt),
	}
	return m
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func handleMe(s *Server, r *request, w *resp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.json(http.StatusOK, map[string]any{"user": s.userJSON(r.user)})
}

func handleShowUser(s *Server, r *request, w *resp) {
	id, err := strconv.ParseInt(r.params[0], 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	if err != nil || u == nil {
		w.notFound()
		return
	}
	w.json(http.StatusOK, map[string]any{"user": s.userJSON(u)})
}

func handleCreateOrUpdateUser(s *Server, r *request, w *resp) {
	var in struct {
		User *struct {
			Name       string `json:"name"`
			Email      string `json:"email"`
			ExternalID string `json:"external_id"`
			Role       string `json:"role"`
		} `json:"user"`
	}
	if !decode(r, w, &in) {
		return
	}
	if in.User == nil {
		w.errorJSON(http.StatusBadRequest, "InvalidValue", "user parameter missing", nil)
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var u *user
	if in.User.Email != "" {
		u = s.usersByEmail[strings.ToLower(in.User.Email)]
	}
	if u == nil && in.User.ExternalID != "" {
		u = s.usersByExt[in.User.ExternalID]
	}
	if u != nil {
		if in.User.Name != "" {
			u.name = in.User.Name
		}
		if in.User.ExternalID != "" && u.externalID == "" {
			u.externalID = in.User.ExternalID
			s.usersByExt[u.externalID] = u
		}
		u.updatedAt = now
		w.json(http.StatusOK, map[string]any{"user": s.userJSON(u)})
		return
	}
	if in.User.Name == "" {
		w.errorJSON(http.StatusUnprocessableEntity, "RecordInvalid", "Record validation errors",
			map[string]any{"name": []map[string]string{{"description": "Name:  is too short (minimum one character)", "error": "InvalidValue"}}})
		return
	}
	role := in.User.Role
	if role == "" {
		role = "end-user"
	}
	u = s.addUserLocked(in.User.Name, in.User.Email, in.User.ExternalID, role, now)
	w.json(http.StatusCreated, map[string]any{"user": s.userJSON(u)})
}

// ---- JSON shapes ----

func viaJSON(channel string) map[string]any {
	return map[string]any{"channel": channel, "source": map[string]any{"from": map[string]any{}, "to": map[string]any{}, "rel": nil}}
}

// viaString is how the incremental export names a channel.
func viaString(channel string) string {
	switch channel {
	case "api":
		return "Web service"
	case "web":
		return "Web form"
	default:
		return channel
	}
}

func htmlBody(body string) string {
	return `<div class="zd-comment" dir="auto"><p dir="auto">` +
		strings.ReplaceAll(html.EscapeString(body), "\n", "<br>") + `</p></div>`
}

func (s *Server) ticketJSON(t *ticket) map[string]any {
	tags := t.tags
	if tags == nil {
		tags = []string{}
	}
	cfs := t.customFields
	if cfs == nil {
		cfs = []customField{}
	}
	followups := t.followupIDs
	if followups == nil {
		followups = []int64{}
	}
	status := t.status
	if t.deleted {
		status = "deleted"
	}
	return map[string]any{
		"id":              t.id,
		"url":             fmt.Sprintf("%s/api/v2/tickets/%d.json", s.base(), t.id),
		"external_id":     nullIfEmpty(t.externalID),
		"type":            nil,
		"subject":         t.subject,
		"raw_subject":     t.subject,
		"description":     t.description,
		"priority":        nil,
		"status":          status,
		"requester_id":    t.requesterID,
		"submitter_id":    t.submitterID,
		"assignee_id":     nil,
		"organization_id": nil,
		"group_id":        nil,
		"tags":            tags,
		"custom_fields":   cfs,
		"via":             t.via,
		"is_public":       t.firstPublic,
		"followup_ids":    followups,
		"has_incidents":   false,
		"created_at":      rfc3339(t.createdAt),
		"updated_at":      rfc3339(t.updatedAt),
	}
}

func commentJSON(c *comment) map[string]any {
	custom := c.custom
	if custom == nil {
		custom = map[string]any{}
	}
	return map[string]any{
		"id":          c.id,
		"type":        "Comment",
		"author_id":   c.authorID,
		"body":        c.body,
		"html_body":   htmlBody(c.body),
		"plain_body":  c.body,
		"public":      c.public,
		"attachments": []any{},
		"audit_id":    c.auditID,
		"via":         viaJSON(c.channel),
		"metadata":    map[string]any{"system": c.system, "custom": custom},
		"created_at":  rfc3339(c.createdAt),
	}
}

func auditEventJSON(e auditEvent) map[string]any {
	switch e.typ {
	case "Comment":
		c := e.comment
		return map[string]any{
			"id": e.id, "type": "Comment", "author_id": c.authorID, "body": c.body,
			"html_body": htmlBody(c.body), "plain_body": c.body, "public": c.public,
			"attachments": []any{}, "audit_id": c.auditID,
		}
	case "Create":
		return map[string]any{"id": e.id, "type": "Create", "field_name": e.field, "value": e.value}
	case "Notification":
		return e.notify.json(e.id)
	default:
		return map[string]any{"id": e.id, "type": e.typ, "field_name": e.field, "value": e.value, "previous_value": e.prev}
	}
}

func auditJSON(a *audit) map[string]any {
	custom := a.custom
	if custom == nil {
		custom = map[string]any{}
	}
	evs := make([]map[string]any, 0, len(a.events))
	for _, e := range a.events {
		evs = append(evs, auditEventJSON(e))
	}
	return map[string]any{
		"id":         a.id,
		"ticket_id":  a.ticketID,
		"author_id":  a.authorID,
		"created_at": rfc3339(a.createdAt),
		"metadata":   map[string]any{"system": a.system, "custom": custom},
		"via":        viaJSON(a.channel),
		"events":     evs,
	}
}

// ---- input ----

type commentIn struct {
	Body     string `json:"body"`
	HTMLBody string `json:"html_body"`
	Public   *bool  `json:"public"`
	AuthorID int64  `json:"author_id"`
}

type ticketIn struct {
	Subject   *string    `json:"subject"`
	Comment   *commentIn `json:"comment"`
	Requester *struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"requester"`
	RequesterID         int64          `json:"requester_id"`
	ExternalID          *string        `json:"external_id"`
	Tags                *[]string      `json:"tags"`
	CustomFields        []customField  `json:"custom_fields"`
	ViaFollowupSourceID int64          `json:"via_followup_source_id"`
	Metadata            map[string]any `json:"metadata"`
	Status              string         `json:"status"`
	SafeUpdate          bool           `json:"safe_update"`
	UpdatedStamp        *time.Time     `json:"updated_stamp"`
}

func decode(r *request, w *resp, v any) bool {
	if err := json.Unmarshal(r.body, v); err != nil {
		w.errorJSON(http.StatusBadRequest, "InvalidJSON", "The request body could not be parsed as JSON", nil)
		return false
	}
	return true
}

func validation(w *resp, field, description string) {
	w.errorJSON(http.StatusUnprocessableEntity, "RecordInvalid", "Record validation errors",
		map[string]any{field: []map[string]string{{"description": description, "error": "InvalidValue"}}})
}

var validStatuses = map[string]bool{"new": true, "open": true, "pending": true, "hold": true, "solved": true, "closed": true}

// ---- changes ----

// notice is something an action did that webhooks and targets hear about.
type notice struct {
	kind     string // "comment_added", "status_changed"
	ticket   map[string]any
	t        ticketSnapshot
	comment  *comment
	author   *user
	current  string
	previous string
}

// ticketSnapshot is what a notification needs of a ticket at the time.
type ticketSnapshot struct {
	id          int64
	externalID  string
	status      string
	requesterID int64
	subject     string
	updatedAt   time.Time
	channel     string
}

func snapshot(t *ticket, channel string) ticketSnapshot {
	return ticketSnapshot{t.id, t.externalID, t.status, t.requesterID, t.subject, t.updatedAt, channel}
}

type change struct {
	author   *user
	channel  string
	comment  *commentIn // AuthorID resolved by the caller
	status   string
	metadata map[string]any
	system   map[string]any
	tags     *[]string
}

// applyLocked applies one update to t as one audit and returns the audit and
// what to notify. The caller validated the change.
func (s *Server) applyLocked(t *ticket, ch change, now time.Time) (*audit, []notice) {
	s.nextAudit++
	a := &audit{id: s.nextAudit, ticketID: t.id, authorID: ch.author.id, createdAt: now, channel: ch.channel, custom: ch.metadata, system: ch.system}
	var notes []notice
	var cm *comment
	var commentAuthor *user
	if ch.comment != nil {
		public := t.firstPublic
		if ch.comment.Public != nil {
			public = *ch.comment.Public
		}
		authorID := ch.author.id
		if ch.comment.AuthorID != 0 {
			authorID = ch.comment.AuthorID
		}
		commentAuthor = s.users[authorID]
		s.nextEvent++
		body := ch.comment.Body
		if body == "" && ch.comment.HTMLBody != "" {
			body = ch.comment.HTMLBody
		}
		cm = &comment{id: s.nextEvent, authorID: authorID, auditID: a.id, body: body, public: public, channel: ch.channel, custom: ch.metadata, system: ch.system, createdAt: now}
		t.comments = append(t.comments, cm)
		a.events = append(a.events, auditEvent{id: cm.id, typ: "Comment", comment: cm})
	}
	newStatus := ch.status
	if newStatus == "" && cm != nil && commentAuthor != nil && !commentAuthor.staff() && (t.status == "pending" || t.status == "solved") {
		newStatus = "open" // an end user's reply reopens the ticket
	}
	prevStatus := t.status
	if newStatus != "" && newStatus != t.status {
		s.nextEvent++
		a.events = append(a.events, auditEvent{id: s.nextEvent, typ: "Change", field: "status", value: newStatus, prev: t.status})
		t.status = newStatus
	}
	if cm != nil && cm.public && commentAuthor != nil && commentAuthor.staff() && t.requesterID != 0 && t.requesterID != commentAuthor.id {
		s.nextEvent++
		a.events = append(a.events, auditEvent{id: s.nextEvent, typ: "Notification", notify: &notification{
			subject: "[" + s.cfg.Subdomain + "] Re: " + t.subject, body: "Your request ({{ticket.id}}) has been updated.\n\n{{ticket.comments_formatted}}",
			recipients: []int64{t.requesterID}, triggerID: notifyRequesterTriggerID, triggerTitle: notifyRequesterTriggerTitle}})
	}
	if ch.tags != nil {
		prev := t.tags
		t.tags = normTags(*ch.tags)
		s.nextEvent++
		a.events = append(a.events, auditEvent{id: s.nextEvent, typ: "Change", field: "tags", value: t.tags, prev: prev})
	}
	t.updatedAt = now
	t.audits = append(t.audits, a)
	if n := len(s.log); n > 0 && a.createdAt.Unix() < s.log[n-1].createdAt.Unix() {
		s.logUnsorted = true // the clock went back: exports sort
	}
	s.log = append(s.log, a)
	snap := snapshot(t, ch.channel)
	if cm != nil {
		notes = append(notes, notice{kind: "comment_added", t: snap, comment: cm, author: commentAuthor})
	}
	if t.status != prevStatus {
		notes = append(notes, notice{kind: "status_changed", t: snap, current: t.status, previous: prevStatus})
	}
	return a, notes
}

// newTicketLocked stores a new ticket built from a create request.
func (s *Server) newTicketLocked(r *request, ti *ticketIn, requester *user, parent *ticket, now time.Time) *ticket {
	s.nextTicket++
	t := &ticket{
		id: s.nextTicket, status: "new", requesterID: requester.id, submitterID: r.user.id,
		createdAt: now, updatedAt: now, via: viaJSON("api"), firstPublic: true,
	}
	if ti.Comment.Public != nil {
		t.firstPublic = *ti.Comment.Public
	}
	if ti.Subject != nil {
		t.subject = *ti.Subject
	}
	if ti.ExternalID != nil {
		t.externalID = *ti.ExternalID
	}
	switch {
	case ti.Tags != nil:
		t.tags = normTags(*ti.Tags)
	case parent != nil:
		t.tags = slices.Clone(parent.tags)
	}
	t.customFields = ti.CustomFields
	t.description = ti.Comment.Body
	if t.description == "" {
		t.description = ti.Comment.HTMLBody
	}
	if parent != nil {
		t.via = map[string]any{"channel": "api", "source": map[string]any{"from": map[string]any{"ticket_id": parent.id, "subject": parent.subject}, "to": map[string]any{}, "rel": "follow_up"}}
		parent.followupIDs = append(parent.followupIDs, t.id)
	}
	s.tickets[t.id] = t
	return t
}

// validNewTicket answers 400 or 422 for a create request Zendesk refuses
// before looking anything up.
func validNewTicket(w *resp, ti *ticketIn) bool {
	switch {
	case ti == nil:
		w.errorJSON(http.StatusBadRequest, "InvalidValue", "ticket parameter missing", nil)
	case ti.Comment == nil || (ti.Comment.Body == "" && ti.Comment.HTMLBody == ""):
		validation(w, "description", "Description: cannot be blank")
	case ti.Status != "" && !validStatuses[ti.Status]:
		validation(w, "status", "Status: is not valid")
	default:
		return true
	}
	return false
}

// requesterLocked finds (or, by e-mail, creates) a new ticket's requester,
// or answers 422 and returns nil.
func (s *Server) requesterLocked(r *request, w *resp, ti *ticketIn, now time.Time) *user {
	switch {
	case ti.Requester != nil && ti.Requester.Email != "":
		if u := s.usersByEmail[strings.ToLower(ti.Requester.Email)]; u != nil {
			return u
		}
		name := ti.Requester.Name
		if name == "" {
			name, _, _ = strings.Cut(ti.Requester.Email, "@")
		}
		return s.addUserLocked(name, ti.Requester.Email, "", "end-user", now)
	case ti.Requester != nil:
		validation(w, "requester", "Requester: Email is required")
		return nil
	case ti.RequesterID != 0:
		u := s.users[ti.RequesterID]
		if u == nil {
			validation(w, "requester", "Requester: is invalid")
		}
		return u
	default:
		return r.user
	}
}

// createEventsLocked returns the Create events of a new ticket's fields.
func (s *Server) createEventsLocked(t *ticket) []auditEvent {
	tags := make([]any, 0, len(t.tags))
	for _, tg := range t.tags {
		tags = append(tags, tg)
	}
	evs := []auditEvent{
		{typ: "Create", field: "subject", value: t.subject},
		{typ: "Create", field: "requester_id", value: strconv.FormatInt(t.requesterID, 10)},
		{typ: "Create", field: "priority", value: nil},
		{typ: "Create", field: "tags", value: tags},
	}
	for _, cf := range t.customFields {
		evs = append(evs, auditEvent{typ: "Create", field: strconv.FormatInt(cf.ID, 10), value: cf.Value})
	}
	for i := range evs {
		s.nextEvent++
		evs[i].id = s.nextEvent
	}
	return evs
}

func normTags(tags []string) []string {
	out := []string{}
	for _, t := range tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// ---- handlers ----

type idemEntry struct {
	body    []byte
	resp    *resp
	expires time.Time
}

func handleCreateTicket(s *Server, r *request, w *resp) {
	key := r.header.Get("Idempotency-Key")
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if key != "" {
		if e, ok := s.idem[key]; ok && now.Before(e.expires) {
			if !jsonEqual(e.body, r.body) {
				w.errorJSON(http.StatusBadRequest, "IdempotentRequestError", "Request parameters don't match the given idempotency key", nil)
				return
			}
			w.status, w.body = e.resp.status, e.resp.body
			for k, v := range e.resp.header {
				w.header[k] = v
			}
			w.header.Set("x-idempotency-lookup", "hit")
			return
		}
		delete(s.idem, key)
	}
	notes := s.createTicketLocked(r, w, now)
	if key != "" {
		w.header.Set("x-idempotency-lookup", "miss")
		if w.status < 500 {
			s.idem[key] = &idemEntry{body: r.body, resp: &resp{status: w.status, header: w.header.Clone(), body: w.body}, expires: now.Add(s.cfg.IdempotencyTTL)}
		}
	}
	s.notifyAsyncLocked(notes)
}

func (s *Server) createTicketLocked(r *request, w *resp, now time.Time) []notice {
	var in struct {
		Ticket *ticketIn `json:"ticket"`
	}
	if !decode(r, w, &in) {
		return nil
	}
	ti := in.Ticket
	if !validNewTicket(w, ti) {
		return nil
	}
	var parent *ticket
	if ti.ViaFollowupSourceID != 0 {
		parent = s.tickets[ti.ViaFollowupSourceID]
		if parent == nil || parent.deleted || parent.status != "closed" {
			validation(w, "via_followup_source_id", "Via followup source id is not a closed ticket")
			return nil
		}
	}
	requester := s.requesterLocked(r, w, ti, now)
	if requester == nil {
		return nil
	}
	if ti.Comment.AuthorID != 0 && s.users[ti.Comment.AuthorID] == nil {
		validation(w, "author_id", "Author: is invalid")
		return nil
	}
	if ti.Comment.AuthorID == 0 {
		c := *ti.Comment
		c.AuthorID = requester.id // the description is the requester's
		ti.Comment = &c
	}
	t := s.newTicketLocked(r, ti, requester, parent, now)
	status := "new"
	if ti.Status != "" {
		status = ti.Status
	}
	t.status = ""
	a, notes := s.applyLocked(t, change{author: r.user, channel: "api", comment: ti.Comment, status: status, metadata: ti.Metadata, system: systemMeta(r)}, now)
	// On a create the status is a Create event, not a Change, and every
	// field set gets one, its value in the shape Zendesk uses: a string,
	// an id as a numeric string, an array, null, or a number.
	for i, e := range a.events {
		if e.typ == "Change" && e.field == "status" {
			a.events[i] = auditEvent{id: e.id, typ: "Create", field: "status", value: e.value}
		}
	}
	a.events = append(a.events, s.createEventsLocked(t)...)
	var keep []notice
	for _, n := range notes {
		if n.kind != "status_changed" {
			keep = append(keep, n)
		}
	}
	w.json(http.StatusCreated, map[string]any{"ticket": s.ticketJSON(t), "audit": auditJSON(a)})
	w.header.Set("Location", fmt.Sprintf("%s/api/v2/tickets/%d.json", s.base(), t.id))
	return keep
}

func systemMeta(r *request) map[string]any {
	return map[string]any{"client": r.header.Get("User-Agent"), "ip_address": "127.0.0.1", "location": "Testville", "latitude": 0, "longitude": 0}
}

func (s *Server) ticketParam(r *request, w *resp) *ticket {
	id, err := strconv.ParseInt(r.params[0], 10, 64)
	t := s.tickets[id]
	if err != nil || t == nil || t.deleted {
		w.notFound()
		return nil
	}
	return t
}

func handleShowTicket(s *Server, r *request, w *resp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.ticketParam(r, w); t != nil {
		w.json(http.StatusOK, map[string]any{"ticket": s.ticketJSON(t)})
	}
}

func handleUpdateTicket(s *Server, r *request, w *resp) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.ticketParam(r, w)
	if t == nil {
		return
	}
	if wait, ok := s.takePerTicketLocked(t.id, r.user.id, now); !ok {
		w.html(http.StatusTooManyRequests, updateRateLimitedPage)
		w.header.Set("Retry-After", strconv.Itoa(ceilSeconds(wait)))
		return
	}
	var in struct {
		Ticket *ticketIn `json:"ticket"`
	}
	if !decode(r, w, &in) {
		return
	}
	ti := in.Ticket
	if ti == nil {
		w.errorJSON(http.StatusBadRequest, "InvalidValue", "ticket parameter missing", nil)
		return
	}
	if t.status == "closed" {
		// Zendesk's detail for a closed ticket has no "error" code.
		w.errorJSON(http.StatusUnprocessableEntity, "RecordInvalid", "Record validation errors",
			map[string]any{"status": []map[string]string{{"description": "Status: closed prevents ticket update"}}})
		return
	}
	if ti.SafeUpdate && ti.UpdatedStamp != nil && !ti.UpdatedStamp.Truncate(time.Second).Equal(t.updatedAt.Truncate(time.Second)) {
		w.errorJSON(http.StatusConflict, "UpdateConflict", "Safe Update prevented the update due to outdated ticket data. Please fetch the latest ticket data and try again.", nil)
		return
	}
	if ti.Status != "" && !validStatuses[ti.Status] {
		validation(w, "status", "Status: is not valid")
		return
	}
	if ti.Comment != nil {
		if ti.Comment.Body == "" && ti.Comment.HTMLBody == "" {
			validation(w, "comment", "Comment: cannot be blank")
			return
		}
		if ti.Comment.AuthorID != 0 && s.users[ti.Comment.AuthorID] == nil {
			validation(w, "author_id", "Author: is invalid")
			return
		}
		if len(t.comments) >= s.cfg.MaxComments {
			w.errorJSON(http.StatusUnprocessableEntity, "RecordInvalid", "Record validation errors",
				map[string]any{"base": []map[string]string{{"description": fmt.Sprintf(commentLimitDescription, s.cfg.MaxComments)}}})
			return
		}
	}
	if ti.Subject != nil {
		t.subject = *ti.Subject
	}
	if ti.ExternalID != nil {
		t.externalID = *ti.ExternalID
	}
	if ti.CustomFields != nil {
		t.customFields = ti.CustomFields
	}
	a, notes := s.applyLocked(t, change{author: r.user, channel: "api", comment: ti.Comment, status: ti.Status, metadata: ti.Metadata, system: systemMeta(r), tags: ti.Tags}, now)
	w.json(http.StatusOK, map[string]any{"ticket": s.ticketJSON(t), "audit": auditJSON(a)})
	s.notifyAsyncLocked(notes)
}

// takePerTicketLocked takes one of the updates user may make to ticket
// within PerTicketWindow (a sliding window: the oldest of the last N updates
// must have left it), or says how long until one is free.
func (s *Server) takePerTicketLocked(ticketID, userID int64, now time.Time) (time.Duration, bool) {
	if s.cfg.PerTicketUpdateLimit <= 0 {
		return 0, true
	}
	key := [2]int64{ticketID, userID}
	times := s.perTicket[key]
	for len(times) > 0 && !times[0].After(now.Add(-s.cfg.PerTicketWindow)) {
		times = times[1:]
	}
	if len(times) >= s.cfg.PerTicketUpdateLimit {
		s.perTicket[key] = times
		return times[0].Add(s.cfg.PerTicketWindow).Sub(now), false
	}
	s.perTicket[key] = append(times, now)
	return 0, true
}

func handleListTickets(s *Server, r *request, w *resp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ext, filter := r.query["external_id"]
	var list []map[string]any
	for _, t := range s.sortedTicketsLocked() {
		if filter && t.externalID != ext[0] {
			continue
		}
		list = append(list, s.ticketJSON(t))
	}
	s.offsetPage(r, w, "tickets", list)
}

func (s *Server) sortedTicketsLocked() []*ticket {
	out := make([]*ticket, 0, len(s.tickets))
	for _, t := range s.tickets {
		if !t.deleted {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *ticket) int { return int(a.id - b.id) })
	return out
}

// offsetPage answers a list with Zendesk's offset pagination (page,
// per_page up to 100), or its cursor pagination when page[size] is given.
func (s *Server) offsetPage(r *request, w *resp, key string, items []map[string]any) {
	if items == nil {
		items = []map[string]any{}
	}
	if size := r.query.Get("page[size]"); size != "" {
		n, _ := strconv.Atoi(size)
		if n <= 0 || n > 100 {
			n = 100
		}
		start := 0
		if after := r.query.Get("page[after]"); after != "" {
			start, _ = strconv.Atoi(decodeCursor(after))
		}
		start = min(max(start, 0), len(items))
		end := min(start+n, len(items))
		hasMore := end < len(items)
		meta := map[string]any{"has_more": hasMore, "after_cursor": nil, "before_cursor": nil}
		links := map[string]any{"prev": nil, "next": nil}
		if end > start {
			meta["before_cursor"] = encodeCursor(strconv.Itoa(start))
			meta["after_cursor"] = encodeCursor(strconv.Itoa(end))
		}
		if hasMore {
			q := cloneQuery(r.query)
			q.Set("page[after]", encodeCursor(strconv.Itoa(end)))
			links["next"] = s.base() + r.path + ".json?" + q.Encode()
		}
		w.json(http.StatusOK, map[string]any{key: items[start:end], "meta": meta, "links": links})
		return
	}
	per, _ := strconv.Atoi(r.query.Get("per_page"))
	if per <= 0 || per > 100 {
		per = 100
	}
	page, _ := strconv.Atoi(r.query.Get("page"))
	if page < 1 {
		page = 1
	}
	start := min((page-1)*per, len(items))
	end := min(start+per, len(items))
	var next, prev any
	if end < len(items) {
		q := cloneQuery(r.query)
		q.Set("page", strconv.Itoa(page+1))
		q.Set("per_page", strconv.Itoa(per))
		next = s.base() + r.path + ".json?" + q.Encode()
	}
	if page > 1 {
		q := cloneQuery(r.query)
		q.Set("page", strconv.Itoa(page-1))
		q.Set("per_page", strconv.Itoa(per))
		prev = s.base() + r.path + ".json?" + q.Encode()
	}
	w.json(http.StatusOK, map[string]any{key: items[start:end], "next_page": next, "previous_page": prev, "count": len(items)})
}

func handleListComments(s *Server, r *request, w *resp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.ticketParam(r, w)
	if t == nil {
		return
	}
	list := make([]map[string]any, 0, len(t.comments))
	for _, c := range t.comments {
		list = append(list, commentJSON(c))
	}
	if r.query.Get("sort_order") == "desc" || r.query.Get("sort") == "-created_at" {
		slices.Reverse(list)
	}
	s.offsetPage(r, w, "comments", list)
}

func handleListAudits(s *Server, r *request, w *resp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.ticketParam(r, w)
	if t == nil {
		return
	}
	list := make([]map[string]any, 0, len(t.audits))
	for _, a := range t.audits {
		list = append(list, auditJSON(a))
	}
	if r.query.Get("sort_order") == "desc" {
		slices.Reverse(list)
	}
	s.offsetPage(r, w, "audits", list)
}

// ---- inspection ----

// asClient turns the fake's wire JSON into the client's type, exactly as the
// client would read it off the wire.
func asClient[T any](wire map[string]any) T {
	b, _ := json.Marshal(wire)
	var v T
	_ = json.Unmarshal(b, &v)
	return v
}

func toTicket(m map[string]any) zendesk.Ticket { return asClient[zendesk.Ticket](m) }

// Tickets returns every ticket that is not deleted, by id.
func (s *Server) Tickets() []zendesk.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []zendesk.Ticket
	for _, t := range s.sortedTicketsLocked() {
		out = append(out, toTicket(s.ticketJSON(t)))
	}
	return out
}

// Ticket returns one ticket; ok is false when it does not exist or was deleted.
func (s *Server) Ticket(id int64) (zendesk.Ticket, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tickets[id]
	if t == nil || t.deleted {
		return zendesk.Ticket{}, false
	}
	return toTicket(s.ticketJSON(t)), true
}

// TicketsByExternalID returns the tickets with this external id, by id.
func (s *Server) TicketsByExternalID(externalID string) []zendesk.Ticket {
	var out []zendesk.Ticket
	for _, t := range s.Tickets() {
		if t.ExternalID == externalID {
			out = append(out, t)
		}
	}
	return out
}

// Comments returns a ticket's comments, oldest first (nil for an unknown ticket).
func (s *Server) Comments(ticketID int64) []zendesk.Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tickets[ticketID]
	if t == nil {
		return nil
	}
	out := make([]zendesk.Comment, 0, len(t.comments))
	for _, c := range t.comments {
		out = append(out, asClient[zendesk.Comment](commentJSON(c)))
	}
	return out
}

// Audits returns a ticket's audits, oldest first.
func (s *Server) Audits(ticketID int64) []zendesk.Audit {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tickets[ticketID]
	if t == nil {
		return nil
	}
	out := make([]zendesk.Audit, 0, len(t.audits))
	for _, a := range t.audits {
		out = append(out, asClient[zendesk.Audit](auditJSON(a)))
	}
	return out
}

// User returns a user's id, name, email and role.
func (s *Server) User(id int64) (zendesk.User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	if u == nil {
		return zendesk.User{}, false
	}
	uid := u.id
	return zendesk.User{ID: &uid, Name: u.name, Email: u.email, Role: u.role, ExternalID: u.externalID}, true
}

// DeleteTicket deletes a ticket as an agent would: it answers 404 from now on
// and shows as "deleted" in the cursor ticket export.
func (s *Server) DeleteTicket(id int64) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tickets[id]; t != nil {
		t.deleted = true
		t.updatedAt = now
	}
}

// CloseTicket closes a ticket as Zendesk's automation does (author: the
// system user, -1), without notifying webhooks.
func (s *Server) CloseTicket(id int64) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tickets[id]
	if t == nil || t.deleted || t.status == "closed" {
		return
	}
	system := &user{id: -1, name: "Zendesk", role: "admin"}
	s.applyLocked(t, change{author: system, channel: "rule", status: "closed", system: map[string]any{}}, now)
}

// CreateTicket creates a ticket directly, as POST /api/v2/tickets would with
// this body (authored by the API user), without an HTTP request: no rate
// limit, no recording, no faults, no notifications. It returns the new
// ticket's id, or 0 (failing the test) when Zendesk would have refused it.
func (s *Server) CreateTicket(nt zendesk.NewTicket) int64 {
	body, err := json.Marshal(map[string]any{"ticket": nt})
	if err != nil {
		s.fail("CreateTicket: %v", err)
		return 0
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	w := newResp()
	s.createTicketLocked(&request{method: "POST", path: "/api/v2/tickets", header: http.Header{}, body: body, user: s.apiUser}, w, now)
	if w.status != http.StatusCreated {
		s.fail("CreateTicket: %d %s", w.status, w.body)
		return 0
	}
	var out struct {
		Ticket struct {
			ID int64 `json:"id"`
		} `json:"ticket"`
	}
	_ = json.Unmarshal(w.body, &out)
	return out.Ticket.ID
}
