package zendesktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
)

// Event-subscription types a webhook can subscribe to.
const (
	EventCommentAdded  = "zen:event-type:ticket.comment_added"
	EventStatusChanged = "zen:event-type:ticket.status_changed"
	// SubscriptionTrigger is the subscription of a webhook connected to a
	// trigger ("Notify active webhook"); it receives TriggerBody.
	SubscriptionTrigger = "conditional_ticket_events"
)

// TriggerBody is THE trigger body deskrelay's README tells admins to put in
// their trigger (webhook or legacy target): ids only, all values strings.
// Rendered as Zendesk would, e.g. status "Pending", updated_at ISO 8601 UTC,
// comment_public "true"/"false".
const TriggerBody = `{"ticket_id":"{{ticket.id}}","external_id":"{{ticket.external_id}}","status":"{{ticket.status}}","updated_at":"{{ticket.updated_at_with_timestamp}}","comment_id":"{{ticket.latest_comment.id}}","comment_public":"{{ticket.latest_comment.is_public}}","comment_author_id":"{{ticket.latest_comment.author.id}}"}`

// Invocation statuses.
const (
	InvocationSuccess       = "success"
	InvocationFailed        = "failed"
	InvocationTimeout       = "timeout"
	InvocationCircuitBroken = "circuit broken"
	// InvocationTerminated: Zendesk gave up on the invocation after the
	// endpoint answered a status it does not retry (e.g. 403); the
	// invocation carries that status code.
	InvocationTerminated = "terminated"
	// InvocationThrottled: Zendesk held the invocation back (its own
	// throttling) and never sent it; no status code.
	InvocationThrottled      = "throttled"
	invocationRetention      = 7 * 24 * time.Hour
	zendeskEventVersion      = "2022-11-06"
	maxTimeoutRetries        = 5
	maxConflictRetries       = 3
	maxRetryAfterRetries     = 3
	retryAfterRetryThreshold = 60 * time.Second
)

type webhook struct {
	id, name, status, endpoint, secret string
	subscriptions                      []string
	createdAt, updatedAt               time.Time
	invocations                        []*invocation
	history                            []outcome // for the circuit breaker
	tripped                            bool
	trippedAt                          time.Time
	probing                            bool
}

type outcome struct {
	at     time.Time
	failed bool
}

type invocation struct {
	id          string
	status      string
	statusCode  int
	createdAt   time.Time
	completedAt time.Time
	attempts    []*attemptRec
}

type attemptRec struct {
	id          string
	status      string
	statusCode  int
	headers     []zendesk.Header
	payload     string
	respHeaders []zendesk.Header
	respBody    string
	completedAt time.Time
}

type target struct {
	id                    int64
	title, url            string
	username, password    string
	active                bool
	createdAt             time.Time
	consecutiveFailures   int
	deliveries, successes int
}

type targetFailure struct {
	id          int64
	targetName  string
	statusCode  int
	consecutive int
	createdAt   time.Time
	rawRequest  string
	rawResponse string
}

// ---- admin controls ----

// AddWebhook creates an active webhook that calls endpoint, signed with
// secret (a random one when empty). With subscriptions (EventCommentAdded,
// EventStatusChanged) it receives the event-subscription envelope; without
// any it is a trigger webhook and receives TriggerBody on every agent action.
// It returns the webhook's id.
func (s *Server) AddWebhook(endpoint, secret string, subscriptions ...string) string {
	now := s.now()
	if secret == "" {
		var b [32]byte
		_, _ = rand.Read(b[:])
		secret = base64.StdEncoding.EncodeToString(b[:])
	}
	if len(subscriptions) == 0 {
		subscriptions = []string{SubscriptionTrigger}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := &webhook{id: newULID(now), name: "deskrelay", status: "active", endpoint: endpoint, secret: secret,
		subscriptions: subscriptions, createdAt: now, updatedAt: now}
	s.webhooks[w.id] = w
	s.webhookOrder = append(s.webhookOrder, w.id)
	return w.id
}

// SetWebhookStatus sets a webhook's status ("active" or "inactive") as an
// admin would. An inactive webhook is not called and records nothing.
func (s *Server) SetWebhookStatus(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.webhooks[id]; w != nil {
		w.status = status
		w.updatedAt = s.now()
	}
}

// Webhook returns a webhook as GET /api/v2/webhooks/{id} shows it.
func (s *Server) Webhook(id string) (zendesk.Webhook, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.webhooks[id]
	if w == nil {
		return zendesk.Webhook{}, false
	}
	return zendesk.Webhook{ID: w.id, Name: w.name, Status: w.status, Endpoint: w.endpoint, HTTPMethod: "POST",
		RequestFormat: "json", Subscriptions: slices.Clone(w.subscriptions), CreatedAt: w.createdAt, UpdatedAt: w.updatedAt}, true
}

// WebhookSecret returns a webhook's signing secret.
func (s *Server) WebhookSecret(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.webhooks[id]; w != nil {
		return w.secret
	}
	return ""
}

// CircuitOpen reports whether a webhook's circuit breaker is tripped.
func (s *Server) CircuitOpen(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.webhooks[id]
	return w != nil && w.tripped
}

// Invocations returns a webhook's invocations, oldest first.
func (s *Server) Invocations(webhookID string) []zendesk.Invocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.webhooks[webhookID]
	if w == nil {
		return nil
	}
	out := make([]zendesk.Invocation, 0, len(w.invocations))
	for _, inv := range w.invocations {
		out = append(out, zendesk.Invocation{ID: inv.id, Status: inv.status, StatusCode: inv.statusCode, LatestCompletedAt: inv.completedAt.UTC().Truncate(time.Second)})
	}
	return out
}

// Attempts returns an invocation's attempts, with the exact payloads.
func (s *Server) Attempts(webhookID, invocationID string) []zendesk.Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.webhooks[webhookID]
	if w == nil {
		return nil
	}
	for _, inv := range w.invocations {
		if inv.id == invocationID {
			var out []zendesk.Attempt
			for _, a := range inv.attempts {
				out = append(out, zendesk.Attempt{ID: a.id, InvocationID: inv.id, Status: a.status, StatusCode: a.statusCode,
					Request: zendesk.AttemptRequest{Headers: slices.Clone(a.headers), Payload: a.payload}, CompletedAt: a.completedAt.UTC().Truncate(time.Second)})
			}
			return out
		}
	}
	return nil
}

// DropWebhooks makes Zendesk itself fail to send (an incident on Zendesk's
// side): while on, events for active webhooks are recorded as failed
// invocations (status code 0, payload kept) and not sent, and targets are not
// called (without counting failures).
func (s *Server) DropWebhooks(drop bool) { s.mu.Lock(); s.dropHooks = drop; s.mu.Unlock() }

// scriptedInvocation is the outcome ScriptInvocations imposes.
type scriptedInvocation struct {
	status string
	code   int
}

// ScriptInvocations makes the next n webhook invocations end with status
// and statusCode without reaching the endpoint, as Zendesk records them:
// ScriptInvocations(1, InvocationTerminated, 403) for an endpoint (or a
// firewall before it) that refused the call, ScriptInvocations(1,
// InvocationThrottled, 0) for one Zendesk throttled and never sent. The
// payload is kept in the invocation's attempt, for recovery from
// GET …/invocations/{id}/attempts. Any status string is accepted.
func (s *Server) ScriptInvocations(n int, status string, statusCode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.scripted = append(s.scripted, scriptedInvocation{status: status, code: statusCode})
	}
}

// DuplicateDeliveries makes the webhook calls of the next n actions happen
// twice each (two invocations with different invocation ids and the same
// payload), as Zendesk documents it may.
func (s *Server) DuplicateDeliveries(n int) { s.mu.Lock(); s.dupNext += n; s.mu.Unlock() }

// AddTarget creates an active legacy URL target that receives TriggerBody
// with basic auth (user, password; none when user is empty) on every agent
// action. It returns the target's id.
func (s *Server) AddTarget(url, user, password string) int64 {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextTarget++
	t := &target{id: s.nextTarget, title: "deskrelay", url: url, username: user, password: password, active: true, createdAt: now}
	s.targets[t.id] = t
	s.targetOrder = append(s.targetOrder, t.id)
	return t.id
}

// Target returns a legacy target.
func (s *Server) Target(id int64) (zendesk.Target, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.targets[id]
	if t == nil {
		return zendesk.Target{}, false
	}
	return zendesk.Target{ID: t.id, Title: t.title, Type: "http_target", Active: t.active, TargetURL: t.url, Method: "post", CreatedAt: t.createdAt}, true
}

// SetTargetActive (de)activates a target as an admin would; activating resets
// its consecutive failure count.
func (s *Server) SetTargetActive(id int64, active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.targets[id]; t != nil {
		t.active = active
		if active {
			t.consecutiveFailures = 0
		}
	}
}

// TargetConsecutiveFailures returns a target's current run of failed deliveries.
func (s *Server) TargetConsecutiveFailures(id int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.targets[id]; t != nil {
		return t.consecutiveFailures
	}
	return 0
}

// ---- agent actions ----

// AgentComment adds a comment by the fake's agent (AgentID) to a ticket, as
// an agent in Zendesk's UI would, and synchronously notifies webhooks and
// targets. It returns the comment's id (0 when the ticket is unknown, deleted
// or closed: that fails the test).
func (s *Server) AgentComment(ticketID int64, body string, public bool) int64 {
	return s.act(ticketID, s.agent, &commentIn{Body: body, Public: &public}, "")
}

// AgentReply adds an agent comment and sets the status in one update
// ("Submit as Pending"). status "" leaves it unchanged.
func (s *Server) AgentReply(ticketID int64, body string, public bool, status string) int64 {
	return s.act(ticketID, s.agent, &commentIn{Body: body, Public: &public}, status)
}

// SetStatus changes a ticket's status as the fake's agent and synchronously
// notifies webhooks and targets.
func (s *Server) SetStatus(ticketID int64, status string) {
	s.act(ticketID, s.agent, nil, status)
}

// EndUserComment adds a public comment by the ticket's requester (as if sent
// by email); it reopens a pending or solved ticket. It notifies like the
// agent actions and returns the comment's id.
func (s *Server) EndUserComment(ticketID int64, body string) int64 {
	s.mu.Lock()
	t := s.tickets[ticketID]
	var req *user
	if t != nil {
		req = s.users[t.requesterID]
	}
	s.mu.Unlock()
	if req == nil {
		s.fail("EndUserComment: unknown ticket %d", ticketID)
		return 0
	}
	pub := true
	return s.act(ticketID, req, &commentIn{Body: body, Public: &pub}, "")
}

func (s *Server) fail(format string, args ...any) {
	if s.tb != nil {
		s.tb.Errorf("zendesktest: "+format, args...)
	} else {
		s.logf(format, args...)
	}
}

func (s *Server) act(ticketID int64, author *user, c *commentIn, status string) int64 {
	now := s.now()
	s.mu.Lock()
	t := s.tickets[ticketID]
	switch {
	case t == nil || t.deleted:
		s.mu.Unlock()
		s.fail("agent action on unknown ticket %d", ticketID)
		return 0
	case t.status == "closed":
		s.mu.Unlock()
		s.fail("agent action on closed ticket %d", ticketID)
		return 0
	case status != "" && !validStatuses[status]:
		s.mu.Unlock()
		s.fail("agent action with invalid status %q", status)
		return 0
	}
	if c != nil {
		c.AuthorID = author.id
	}
	a, notes := s.applyLocked(t, change{author: author, channel: "web", comment: c, status: status, system: map[string]any{"client": "Mozilla/5.0", "ip_address": "10.0.0.1"}}, now)
	jobs := s.jobsLocked(notes, now)
	s.mu.Unlock()
	s.run(jobs)
	for _, e := range a.events {
		if e.typ == "Comment" {
			return e.id
		}
	}
	return 0
}

// WaitDeliveries waits for the asynchronous deliveries of NotifyAPIWrites.
func (s *Server) WaitDeliveries() { s.wg.Wait() }

func (s *Server) notifyAsyncLocked(notes []notice) {
	if !s.cfg.NotifyAPIWrites || len(notes) == 0 {
		return
	}
	jobs := s.jobsLocked(notes, s.now())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(jobs)
	}()
}

// ---- deliveries ----

type job struct {
	hook   *webhook
	inv    *invocation
	probe  bool
	target *target
	body   []byte
}

// jobsLocked turns an action's notices into deliveries, recording the
// invocations that are dropped or circuit broken.
func (s *Server) jobsLocked(notes []notice, now time.Time) []job {
	if len(notes) == 0 {
		return nil
	}
	var jobs []job
	trigger := []byte(s.renderTriggerLocked(notes[0].t))
	for _, id := range s.webhookOrder {
		w := s.webhooks[id]
		if w.status != "active" {
			continue
		}
		var bodies [][]byte
		if slices.Contains(w.subscriptions, SubscriptionTrigger) {
			bodies = append(bodies, trigger)
		}
		for _, n := range notes {
			typ := "zen:event-type:ticket." + n.kind
			if slices.Contains(w.subscriptions, typ) {
				bodies = append(bodies, s.envelope(typ, n, now))
			}
		}
		if s.dupNext > 0 && len(bodies) > 0 {
			s.dupNext--
			bodies = append(bodies, bodies...) // Zendesk may invoke twice for one change
		}
		for _, b := range bodies {
			inv := &invocation{id: newULID(now), createdAt: now}
			w.invocations = append(w.invocations, inv)
			s.pruneLocked(w, now)
			switch {
			case len(s.scripted) > 0:
				sc := s.scripted[0]
				s.scripted = s.scripted[1:]
				s.finishBrokenLocked(w, inv, b, sc.status, now)
				inv.statusCode, inv.attempts[len(inv.attempts)-1].statusCode = sc.code, sc.code
			case s.dropHooks:
				s.finishBrokenLocked(w, inv, b, InvocationFailed, now)
			case w.tripped && (now.Before(w.trippedAt.Add(s.cfg.CircuitPause)) || w.probing):
				s.finishBrokenLocked(w, inv, b, InvocationCircuitBroken, now)
			case w.tripped:
				w.probing = true
				jobs = append(jobs, job{hook: w, inv: inv, probe: true, body: b})
			default:
				jobs = append(jobs, job{hook: w, inv: inv, body: b})
			}
		}
	}
	if !s.dropHooks {
		for _, id := range s.targetOrder {
			if t := s.targets[id]; t.active {
				jobs = append(jobs, job{target: t, body: trigger})
			}
		}
	}
	return jobs
}

func (s *Server) finishBrokenLocked(w *webhook, inv *invocation, body []byte, status string, now time.Time) {
	inv.status, inv.completedAt = status, now
	inv.attempts = append(inv.attempts, &attemptRec{id: newULID(now), status: status, headers: s.hookHeaders(w, inv, now, body), payload: string(body), completedAt: now})
}

func (s *Server) pruneLocked(w *webhook, now time.Time) {
	cut := now.Add(-invocationRetention)
	i := 0
	for i < len(w.invocations) && !w.invocations[i].completedAt.IsZero() && w.invocations[i].completedAt.Before(cut) {
		i++
	}
	w.invocations = w.invocations[i:]
}

func (s *Server) envelope(typ string, n notice, now time.Time) []byte {
	t := n.t
	detail := map[string]any{
		"actor_id":     strconv.FormatInt(s.actorOf(n), 10),
		"brand_id":     "1",
		"external_id":  nullIfEmpty(t.externalID),
		"id":           strconv.FormatInt(t.id, 10),
		"requester_id": strconv.FormatInt(t.requesterID, 10),
		"status":       strings.ToUpper(t.status),
		"subject":      t.subject,
		"updated_at":   rfc3339(t.updatedAt),
		"via":          map[string]any{"channel": t.channel},
	}
	var event map[string]any
	if n.kind == "comment_added" {
		au := n.author
		if au == nil {
			au = &user{id: n.comment.authorID}
		}
		event = map[string]any{"comment": map[string]any{
			"id": n.comment.id, "body": n.comment.body, "is_public": n.comment.public,
			"author": map[string]any{"id": strconv.FormatInt(au.id, 10), "is_staff": au.staff(), "name": au.name},
		}}
	} else {
		event = map[string]any{"current": strings.ToUpper(n.current), "previous": strings.ToUpper(n.previous)}
	}
	b, _ := json.Marshal(map[string]any{
		"account_id":            s.cfg.AccountID,
		"id":                    newUUID(),
		"subject":               "zen:ticket:" + strconv.FormatInt(t.id, 10),
		"time":                  rfc3339(now),
		"type":                  typ,
		"zendesk_event_version": zendeskEventVersion,
		"detail":                detail,
		"event":                 event,
	})
	return b
}

func (s *Server) actorOf(n notice) int64 {
	if n.author != nil {
		return n.author.id
	}
	return s.agent.id
}

// renderTriggerLocked renders TriggerBody for a ticket as it is now.
func (s *Server) renderTriggerLocked(snap ticketSnapshot) string {
	t := s.tickets[snap.id]
	var cid, cpub, cauthor string
	if t != nil && len(t.comments) > 0 {
		c := t.comments[len(t.comments)-1]
		cid, cpub, cauthor = strconv.FormatInt(c.id, 10), strconv.FormatBool(c.public), strconv.FormatInt(c.authorID, 10)
	}
	status := snap.status
	if status != "" {
		status = strings.ToUpper(status[:1]) + status[1:]
	}
	return strings.NewReplacer(
		"{{ticket.id}}", strconv.FormatInt(snap.id, 10),
		"{{ticket.external_id}}", snap.externalID,
		"{{ticket.status}}", status,
		"{{ticket.updated_at_with_timestamp}}", rfc3339(snap.updatedAt),
		"{{ticket.latest_comment.id}}", cid,
		"{{ticket.latest_comment.is_public}}", cpub,
		"{{ticket.latest_comment.author.id}}", cauthor,
	).Replace(TriggerBody)
}

func (s *Server) hookHeaders(w *webhook, inv *invocation, now time.Time, body []byte) []zendesk.Header {
	ts := rfc3339(now)
	return []zendesk.Header{
		{Key: "Content-Type", Value: "application/json; charset=utf-8"},
		{Key: "User-Agent", Value: "Zendesk Webhook"},
		{Key: "X-Zendesk-Account-Id", Value: strconv.FormatInt(s.cfg.AccountID, 10)},
		{Key: "X-Zendesk-Webhook-Id", Value: w.id},
		{Key: "X-Zendesk-Webhook-Invocation-Id", Value: inv.id},
		{Key: zendesk.HeaderSignature, Value: zendesk.Sign(w.secret, ts, body)},
		{Key: zendesk.HeaderSignatureTimestamp, Value: ts},
	}
}

// run performs deliveries one after the other, outside the lock.
func (s *Server) run(jobs []job) {
	for _, j := range jobs {
		if j.target != nil {
			s.deliverTarget(j)
		} else {
			s.deliverHook(j)
		}
	}
}

// send makes one HTTP attempt and classifies it.
func (s *Server) send(url string, headers []zendesk.Header, body []byte, user, pass string) (status string, code int, retryAfter time.Duration, hasRA bool, respHeaders []zendesk.Header, respBody string) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return InvocationFailed, 0, 0, false, nil, err.Error()
	}
	for _, h := range headers {
		req.Header.Set(h.Key, h.Value)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	res, err := s.deliveryClient.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return InvocationTimeout, 0, 0, false, nil, "timeout"
		}
		return InvocationFailed, 0, 0, false, nil, "connection failed"
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	for k, v := range res.Header {
		respHeaders = append(respHeaders, zendesk.Header{Key: k, Value: strings.Join(v, ", ")})
	}
	if ra := res.Header.Get("Retry-After"); ra != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil {
			retryAfter, hasRA = time.Duration(n)*time.Second, true
		}
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return InvocationSuccess, res.StatusCode, 0, false, respHeaders, string(rb)
	}
	return InvocationFailed, res.StatusCode, retryAfter, hasRA, respHeaders, string(rb)
}

func (s *Server) deliverHook(j job) {
	w, inv := j.hook, j.inv
	var conflicts, timeouts, throttles int
	for {
		now := s.now()
		s.mu.Lock()
		headers := s.hookHeaders(w, inv, now, j.body)
		endpoint := w.endpoint
		s.mu.Unlock()
		status, code, ra, hasRA, rh, rb := s.send(endpoint, headers, j.body, "", "")
		done := s.now()

		s.mu.Lock()
		inv.attempts = append(inv.attempts, &attemptRec{id: newULID(done), status: status, statusCode: code, headers: headers,
			payload: string(j.body), respHeaders: rh, respBody: rb, completedAt: done})
		inv.status, inv.statusCode, inv.completedAt = status, code, done
		failed := status != InvocationSuccess
		w.history = append(w.history, outcome{done, failed})
		if j.probe {
			w.probing = false
			if failed {
				w.trippedAt = done
			} else {
				w.tripped, w.history = false, nil
			}
		} else {
			s.maybeTripLocked(w, done)
		}
		tripped := w.tripped
		s.mu.Unlock()
		if status != InvocationSuccess {
			s.logf("webhook %s invocation %s: %s %d", w.id, inv.id, status, code)
		}

		if !failed || j.probe || tripped {
			return
		}
		retry := false
		var wait time.Duration
		switch {
		case status == InvocationTimeout:
			timeouts++
			retry = timeouts <= maxTimeoutRetries
		case code == http.StatusConflict:
			conflicts++
			retry = conflicts <= maxConflictRetries
		case (code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable) && hasRA && ra < retryAfterRetryThreshold:
			throttles++
			retry = throttles <= maxRetryAfterRetries
			wait = min(ra, s.cfg.WebhookMaxRetryWait)
		}
		if !retry {
			return
		}
		if wait > 0 {
			time.Sleep(wait)
		}
	}
}

func (s *Server) maybeTripLocked(w *webhook, now time.Time) {
	cut := now.Add(-s.cfg.CircuitWindow)
	i := 0
	for i < len(w.history) && w.history[i].at.Before(cut) {
		i++
	}
	w.history = w.history[i:]
	failed := 0
	for _, o := range w.history {
		if o.failed {
			failed++
		}
	}
	total := len(w.history)
	if (total >= s.cfg.CircuitMinRequests && float64(failed) >= s.cfg.CircuitFailureRatio*float64(total)) || failed > s.cfg.CircuitMaxErrors {
		w.tripped, w.trippedAt = true, now
		s.logf("webhook %s: circuit breaker tripped (%d of %d requests failed)", w.id, failed, total)
	}
}

func (s *Server) deliverTarget(j job) {
	t := j.target
	s.mu.Lock()
	url, user, pass := t.url, t.username, t.password
	s.mu.Unlock()
	headers := []zendesk.Header{{Key: "Content-Type", Value: "application/json; charset=utf-8"}, {Key: "User-Agent", Value: "Zendesk URL Target"}}
	status, code, _, _, _, rb := s.send(url, headers, j.body, user, pass)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t.deliveries++
	if status == InvocationSuccess {
		t.successes++
		t.consecutiveFailures = 0
		return
	}
	t.consecutiveFailures++
	s.nextFailure++
	s.targetFails = append(s.targetFails, targetFailure{id: s.nextFailure, targetName: t.title, statusCode: code,
		consecutive: t.consecutiveFailures, createdAt: now, rawRequest: "POST " + url + "\n\n" + string(j.body), rawResponse: rb})
	if len(s.targetFails) > 100 {
		s.targetFails = s.targetFails[len(s.targetFails)-100:]
	}
	if t.consecutiveFailures >= s.cfg.TargetMaxFailures && t.active {
		t.active = false
		s.logf("target %d deactivated after %d consecutive failures", t.id, t.consecutiveFailures)
	}
}

// ---- HTTP: webhooks ----

func webhookError(w *resp, status int, code, title string) {
	w.json(status, map[string]any{"errors": []map[string]string{{"code": code, "title": title, "detail": title}}})
}

func (s *Server) hookParam(r *request, w *resp) *webhook {
	h := s.webhooks[r.params[0]]
	if h == nil {
		webhookError(w, http.StatusNotFound, "WebhookNotFound", "Webhook not found")
	}
	return h
}

func (s *Server) webhookJSON(h *webhook) map[string]any {
	return map[string]any{
		"id": h.id, "name": h.name, "status": h.status, "endpoint": h.endpoint, "http_method": "POST",
		"request_format": "json", "subscriptions": h.subscriptions, "authentication": nil,
		"created_at": rfc3339(h.createdAt), "created_by": strconv.FormatInt(s.apiUser.id, 10),
		"updated_at": rfc3339(h.updatedAt), "updated_by": strconv.FormatInt(s.apiUser.id, 10),
	}
}

func handleShowWebhook(s *Server, r *request, w *resp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hookParam(r, w); h != nil {
		w.json(http.StatusOK, map[string]any{"webhook": s.webhookJSON(h)})
	}
}

func handlePatchWebhook(s *Server, r *request, w *resp) {
	var in struct {
		Webhook *struct {
			Status   *string `json:"status"`
			Endpoint *string `json:"endpoint"`
			Name     *string `json:"name"`
		} `json:"webhook"`
	}
	if err := json.Unmarshal(r.body, &in); err != nil || in.Webhook == nil {
		webhookError(w, http.StatusBadRequest, "InvalidInput", "Invalid webhook input")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hookParam(r, w)
	if h == nil {
		return
	}
	if st := in.Webhook.Status; st != nil {
		if *st != "active" && *st != "inactive" {
			webhookError(w, http.StatusBadRequest, "InvalidStatus", "Status must be active or inactive")
			return
		}
		h.status = *st
	}
	if in.Webhook.Endpoint != nil {
		h.endpoint = *in.Webhook.Endpoint
	}
	if in.Webhook.Name != nil {
		h.name = *in.Webhook.Name
	}
	h.updatedAt = s.now()
	w.status = http.StatusNoContent
}

func handleSigningSecret(s *Server, r *request, w *resp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hookParam(r, w); h != nil {
		w.json(http.StatusOK, map[string]any{"signing_secret": map[string]string{"algorithm": "SHA256", "secret": h.secret}})
	}
}

func parseTS(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, true
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}

// invocationQuery reads List Webhook Invocations' filters, or answers 400.
func invocationQuery(r *request, w *resp) (from, to time.Time, size int, desc, ok bool) {
	from, ok1 := parseTS(r.query.Get("filter[from_ts]"))
	to, ok2 := parseTS(r.query.Get("filter[to_ts]"))
	if !ok1 || !ok2 {
		webhookError(w, http.StatusBadRequest, "InvalidFilter", "filter[from_ts] and filter[to_ts] must be ISO 8601 times")
		return from, to, 0, false, false
	}
	size = 20
	if v := r.query.Get("page[size]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			webhookError(w, http.StatusBadRequest, "InvalidPageSize", "page[size] must be between 1 and 100")
			return from, to, 0, false, false
		}
		size = n
	}
	switch r.query.Get("sort") {
	case "", "-latest_completed_at":
		desc = true
	case "latest_completed_at":
	default:
		webhookError(w, http.StatusBadRequest, "InvalidSort", "sort must be latest_completed_at or -latest_completed_at")
		return from, to, 0, false, false
	}
	return from, to, size, desc, true
}

func handleInvocations(s *Server, r *request, w *resp) {
	from, to, size, desc, ok := invocationQuery(r, w)
	if !ok {
		return
	}
	statusFilter := r.query.Get("filter[status]")
	now := s.now()

	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hookParam(r, w)
	if h == nil {
		return
	}
	var list []*invocation
	for _, inv := range h.invocations {
		c := inv.completedAt
		if c.IsZero() || c.Before(now.Add(-invocationRetention)) {
			continue // in flight, or older than 7 days
		}
		if (!from.IsZero() && c.Before(from)) || (!to.IsZero() && c.After(to)) || (statusFilter != "" && inv.status != statusFilter) {
			continue
		}
		list = append(list, inv)
	}
	key := func(inv *invocation) string { return fmt.Sprintf("%020d:%s", inv.completedAt.UnixNano(), inv.id) }
	slices.SortFunc(list, func(a, b *invocation) int {
		c := strings.Compare(key(a), key(b))
		if desc {
			c = -c
		}
		return c
	})
	if after := r.query.Get("page[after]"); after != "" {
		k := decodeCursor(after)
		i := 0
		for i < len(list) && ((!desc && key(list[i]) <= k) || (desc && key(list[i]) >= k)) {
			i++
		}
		list = list[i:]
	}
	page := list
	if len(page) > size {
		page = list[:size]
	}
	hasMore := len(page) < len(list)
	out := make([]map[string]any, 0, len(page))
	for _, inv := range page {
		out = append(out, map[string]any{"id": inv.id, "status": inv.status, "status_code": statusCode(inv.statusCode), "latest_completed_at": rfc3339(inv.completedAt)})
	}
	meta := map[string]any{"has_more": hasMore, "after_cursor": nil, "before_cursor": nil}
	links := map[string]any{"next": nil, "prev": nil}
	if len(page) > 0 {
		meta["after_cursor"] = encodeCursor(key(page[len(page)-1]))
		meta["before_cursor"] = encodeCursor(key(page[0]))
	}
	if hasMore {
		q := cloneQuery(r.query)
		q.Set("page[after]", encodeCursor(key(page[len(page)-1])))
		links["next"] = s.base() + r.path + "?" + q.Encode()
	}
	w.json(http.StatusOK, map[string]any{"invocations": out, "meta": meta, "links": links})
}

func handleAttempts(s *Server, r *request, w *resp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hookParam(r, w)
	if h == nil {
		return
	}
	for _, inv := range h.invocations {
		if inv.id != r.params[1] {
			continue
		}
		out := []map[string]any{}
		for _, a := range inv.attempts {
			hs := a.headers
			if hs == nil {
				hs = []zendesk.Header{}
			}
			rhs := a.respHeaders
			if rhs == nil {
				rhs = []zendesk.Header{}
			}
			out = append(out, map[string]any{
				"id": a.id, "invocation_id": inv.id, "status": a.status, "status_code": statusCode(a.statusCode),
				"request":      map[string]any{"headers": hs, "payload": a.payload},
				"response":     map[string]any{"headers": rhs, "payload": a.respBody, "status": statusCode(a.statusCode)},
				"completed_at": rfc3339(a.completedAt),
			})
		}
		w.json(http.StatusOK, map[string]any{"attempts": out})
		return
	}
	webhookError(w, http.StatusNotFound, "InvocationNotFound", "Invocation not found")
}

// statusCode renders an invocation's status code: null when no answer came
// (throttled, circuit broken, timeout, connection failure).
func statusCode(code int) any {
	if code == 0 {
		return nil
	}
	return code
}

// ---- HTTP: targets ----

func (s *Server) targetJSON(t *target) map[string]any {
	return map[string]any{
		"id": t.id, "url": fmt.Sprintf("%s/api/v2/targets/%d.json", s.base(), t.id), "title": t.title, "type": "http_target",
		"active": t.active, "target_url": t.url, "method": "post", "content_type": "application/json",
		"username": nullIfEmpty(t.username), "created_at": rfc3339(t.createdAt),
	}
}

func (s *Server) targetParam(r *request, w *resp) *target {
	id, err := strconv.ParseInt(r.params[0], 10, 64)
	t := s.targets[id]
	if err != nil || t == nil {
		w.notFound()
		return nil
	}
	return t
}

func handleShowTarget(s *Server, r *request, w *resp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.targetParam(r, w); t != nil {
		w.json(http.StatusOK, map[string]any{"target": s.targetJSON(t)})
	}
}

func handleUpdateTarget(s *Server, r *request, w *resp) {
	var in struct {
		Target *struct {
			Active    *bool   `json:"active"`
			TargetURL *string `json:"target_url"`
			Title     *string `json:"title"`
		} `json:"target"`
	}
	if !decode(r, w, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.targetParam(r, w)
	if t == nil {
		return
	}
	if in.Target == nil {
		w.errorJSON(http.StatusBadRequest, "InvalidValue", "target parameter missing", nil)
		return
	}
	if in.Target.Active != nil {
		if *in.Target.Active && !t.active {
			t.consecutiveFailures = 0
		}
		t.active = *in.Target.Active
	}
	if in.Target.TargetURL != nil {
		t.url = *in.Target.TargetURL
	}
	if in.Target.Title != nil {
		t.title = *in.Target.Title
	}
	w.json(http.StatusOK, map[string]any{"target": s.targetJSON(t)})
}

func handleTargetFailures(s *Server, _ *request, w *resp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for i := len(s.targetFails) - 1; i >= 0 && len(out) < 25; i-- {
		f := s.targetFails[i]
		out = append(out, map[string]any{
			"id": f.id, "target_name": f.targetName, "status_code": f.statusCode,
			"consecutive_failure_count": f.consecutive, "created_at": rfc3339(f.createdAt),
			"raw_request": f.rawRequest, "raw_response": f.rawResponse,
		})
	}
	w.json(http.StatusOK, map[string]any{"target_failures": out})
}
