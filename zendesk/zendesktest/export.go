package zendesktest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// exportStart parses and checks start_time: present, a number, and at least
// ExportLag in the past.
func (s *Server) exportStart(r *request, w *resp, now time.Time) (int64, bool) {
	raw := r.query.Get("start_time")
	if raw == "" {
		w.errorJSON(http.StatusBadRequest, "InvalidValue", "start_time is required", nil)
		return 0, false
	}
	st, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || st < 0 {
		w.errorJSON(http.StatusBadRequest, "InvalidValue", "start_time must be a Unix epoch time in seconds", nil)
		return 0, false
	}
	if st > now.Add(-s.cfg.ExportLag).Unix() {
		w.errorJSON(http.StatusBadRequest, "InvalidValue",
			fmt.Sprintf("Too recent start_time. Use a start_time older than %d seconds.", int(s.cfg.ExportLag/time.Second)), nil)
		return 0, false
	}
	return st, true
}

// handleTicketEvents serves the time-based incremental ticket event export.
// Like Zendesk's, a page ends at a timestamp and the next page starts at that
// same timestamp, so events at page boundaries can be repeated.
func handleTicketEvents(s *Server, r *request, w *resp) {
	now := s.now()
	start, ok := s.exportStart(r, w, now)
	if !ok {
		return
	}
	cutoff := now.Add(-s.cfg.ExportLag).Unix()
	withComments := slices.Contains(strings.Split(r.query.Get("include"), ","), "comment_events")

	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*audit
	if !s.logUnsorted {
		// The log is in timestamp order: find the window by binary search.
		lo, _ := slices.BinarySearchFunc(s.log, start, func(a *audit, t int64) int { return cmpInt(a.createdAt.Unix(), t) })
		hi, _ := slices.BinarySearchFunc(s.log, cutoff+1, func(a *audit, t int64) int { return cmpInt(a.createdAt.Unix(), t) })
		all = s.log[lo:hi]
	} else {
		for _, a := range s.log {
			if ts := a.createdAt.Unix(); ts >= start && ts <= cutoff {
				all = append(all, a)
			}
		}
		slices.SortStableFunc(all, func(a, b *audit) int {
			if c := cmpInt(a.createdAt.Unix(), b.createdAt.Unix()); c != 0 {
				return c
			}
			return cmpInt(a.id, b.id)
		})
	}
	n := s.cfg.ExportPageSize
	page := all
	eos := true
	if len(all) > n {
		page = all[:n]
		last := page[n-1].createdAt.Unix()
		for len(page) < len(all) && all[len(page)].createdAt.Unix() == last {
			page = all[:len(page)+1] // never split one second across pages
		}
		eos = len(page) == len(all)
	}
	end := start
	if len(page) > 0 {
		end = page[len(page)-1].createdAt.Unix()
		if !eos && end == start {
			end = start + 1 // the whole page was one second: move on
		}
	}
	events := make([]map[string]any, 0, len(page))
	for _, a := range page {
		events = append(events, s.ticketEventJSON(a, withComments))
	}
	q := cloneQuery(r.query)
	q.Set("start_time", strconv.FormatInt(end, 10))
	w.json(http.StatusOK, map[string]any{
		"ticket_events": events,
		"next_page":     s.base() + "/api/v2/incremental/ticket_events.json?" + q.Encode(),
		"count":         len(events),
		"end_of_stream": eos,
		"end_time":      end,
	})
}

func (s *Server) ticketEventJSON(a *audit, withComments bool) map[string]any {
	via := viaString(a.channel)    // the event's own via is a string ("Web form")
	childVia := viaJSON(a.channel) // its children's is an object {channel, source}
	children := []map[string]any{}
	for _, e := range a.events {
		switch e.typ {
		case "Comment":
			if !withComments {
				continue
			}
			c := e.comment
			children = append(children, map[string]any{
				"id": e.id, "via": childVia, "via_reference_id": nil, "type": "Comment",
				"author_id": c.authorID, "body": c.body, "html_body": htmlBody(c.body), "plain_body": c.body,
				"public": c.public, "attachments": []any{}, "audit_id": a.id,
				"created_at": rfc3339(c.createdAt), "event_type": "Comment",
			})
		case "Notification":
			ev := e.notify.json(e.id)
			delete(ev, "type")
			ev["event_type"], ev["via_reference_id"] = "Notification", nil
			children = append(children, ev)
		case "Create":
			children = append(children, map[string]any{
				"id": e.id, "via": childVia, "via_reference_id": nil, e.field: e.value, "event_type": "Create",
			})
		default:
			children = append(children, map[string]any{
				"id": e.id, "via": childVia, "via_reference_id": nil, e.field: e.value, "event_type": e.typ, "previous_value": e.prev,
			})
		}
	}
	custom := a.custom
	if custom == nil {
		custom = map[string]any{}
	}
	return map[string]any{
		"id":           a.id,
		"ticket_id":    a.ticketID,
		"timestamp":    a.createdAt.Unix(),
		"created_at":   rfc3339(a.createdAt),
		"updater_id":   a.authorID,
		"via":          via,
		"system":       a.system,
		"metadata":     map[string]any{"system": a.system, "custom": custom},
		"event_type":   "Audit",
		"child_events": children,
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type tpos struct{ ts, id int64 }

func (p tpos) less(q tpos) bool { return p.ts < q.ts || (p.ts == q.ts && p.id < q.id) }

func parsePos(c string) (tpos, bool) {
	a, b, ok := strings.Cut(decodeCursor(c), ":")
	if !ok {
		return tpos{}, false
	}
	ts, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseInt(b, 10, 64)
	return tpos{ts, id}, err1 == nil && err2 == nil
}

func (p tpos) cursor() string { return encodeCursor(fmt.Sprintf("%d:%d", p.ts, p.id)) }

// handleTicketsCursor serves the cursor-based incremental ticket export.
func handleTicketsCursor(s *Server, r *request, w *resp) {
	now := s.now()
	var after tpos
	if c := r.query.Get("cursor"); c != "" {
		p, ok := parsePos(c)
		if !ok {
			w.errorJSON(http.StatusBadRequest, "InvalidValue", "Invalid cursor", nil)
			return
		}
		after = p
	} else {
		st, ok := s.exportStart(r, w, now)
		if !ok {
			return
		}
		after = tpos{st, -1}
	}
	per, _ := strconv.Atoi(r.query.Get("per_page"))
	if per <= 0 || per > 1000 {
		per = s.cfg.ExportPageSize
	}
	cutoff := now.Add(-s.cfg.ExportLag).Unix()

	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*ticket
	for _, t := range s.tickets {
		p := tpos{t.updatedAt.Unix(), t.id}
		if after.less(p) && p.ts <= cutoff {
			all = append(all, t)
		}
	}
	slices.SortFunc(all, func(a, b *ticket) int {
		pa, pb := tpos{a.updatedAt.Unix(), a.id}, tpos{b.updatedAt.Unix(), b.id}
		switch {
		case pa.less(pb):
			return -1
		case pb.less(pa):
			return 1
		}
		return 0
	})
	page := all
	if len(page) > per {
		page = all[:per]
	}
	eos := len(page) == len(all)
	list := make([]map[string]any, 0, len(page))
	for _, t := range page {
		list = append(list, s.ticketJSON(t))
	}
	last := after
	var before any
	if len(page) > 0 {
		last = tpos{page[len(page)-1].updatedAt.Unix(), page[len(page)-1].id}
		before = tpos{page[0].updatedAt.Unix(), page[0].id - 1}.cursor()
	}
	q := cloneQuery(r.query)
	q.Del("start_time")
	q.Set("cursor", last.cursor())
	w.json(http.StatusOK, map[string]any{
		"tickets":       list,
		"after_cursor":  last.cursor(),
		"after_url":     s.base() + "/api/v2/incremental/tickets/cursor.json?" + q.Encode(),
		"before_cursor": before,
		"before_url":    nil,
		"end_of_stream": eos,
	})
}
