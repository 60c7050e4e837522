package zendesktest

import (
	"encoding/base64"
	"net/url"
	"strings"
)

// routes lists every endpoint the fake serves. Paths are matched without a
// .json suffix; "*" matches one path segment.
var routes = []struct {
	method, pattern string
	h               handler
}{
	{"POST", "/api/v2/tickets", handler{fn: handleCreateTicket}},
	{"GET", "/api/v2/tickets", handler{fn: handleListTickets, list: true}},
	{"GET", "/api/v2/tickets/*", handler{fn: handleShowTicket}},
	{"PUT", "/api/v2/tickets/update_many", handler{fn: handleUpdateMany}},
	{"GET", "/api/v2/job_statuses/*", handler{fn: handleShowJobStatus}},
	{"PUT", "/api/v2/tickets/*", handler{fn: handleUpdateTicket, limit: func(s *Server) *bucket { return &s.updates }}},
	{"GET", "/api/v2/tickets/*/comments", handler{fn: handleListComments, list: true}},
	{"GET", "/api/v2/tickets/*/audits", handler{fn: handleListAudits, list: true}},
	{"GET", "/api/v2/incremental/ticket_events", handler{fn: handleTicketEvents, limit: func(s *Server) *bucket { return &s.exports }}},
	{"GET", "/api/v2/incremental/tickets/cursor", handler{fn: handleTicketsCursor, limit: func(s *Server) *bucket { return &s.exports }}},
	{"GET", "/api/v2/users/me", handler{fn: handleMe}},
	{"POST", "/api/v2/users/create_or_update", handler{fn: handleCreateOrUpdateUser, limit: func(s *Server) *bucket { return &s.userCreates }}},
	{"GET", "/api/v2/users/*", handler{fn: handleShowUser}},
	{"GET", "/api/v2/webhooks/*", handler{fn: handleShowWebhook, webhooksAPI: true}},
	{"PATCH", "/api/v2/webhooks/*", handler{fn: handlePatchWebhook, webhooksAPI: true}},
	{"GET", "/api/v2/webhooks/*/signing_secret", handler{fn: handleSigningSecret, webhooksAPI: true}},
	{"GET", "/api/v2/webhooks/*/invocations", handler{fn: handleInvocations, webhooksAPI: true}},
	{"GET", "/api/v2/webhooks/*/invocations/*/attempts", handler{fn: handleAttempts, webhooksAPI: true}},
	{"GET", "/api/v2/targets/*", handler{fn: handleShowTarget}},
	{"PUT", "/api/v2/targets/*", handler{fn: handleUpdateTarget}},
	{"GET", "/api/v2/target_failures", handler{fn: handleTargetFailures, list: true}},
	{"POST", "/oauth/tokens", handler{fn: handleOAuthToken, public: true}},
}

func route(method, path string) (handler, []string, bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	// Literal routes win over wildcards (users/me before users/*).
	var best *handler
	var bestParams []string
	bestWild := -1
	for i := range routes {
		rt := &routes[i]
		if rt.method != method {
			continue
		}
		ps := strings.Split(strings.Trim(rt.pattern, "/"), "/")
		if len(ps) != len(segs) {
			continue
		}
		var params []string
		ok, wild := true, 0
		for j, p := range ps {
			if p == "*" {
				if segs[j] == "" {
					ok = false
					break
				}
				params = append(params, segs[j])
				wild++
			} else if p != segs[j] {
				ok = false
				break
			}
		}
		if ok && (best == nil || wild < bestWild) {
			best, bestParams, bestWild = &rt.h, params, wild
		}
	}
	if best == nil {
		return handler{}, nil, false
	}
	return *best, bestParams, true
}

func encodeCursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeCursor(c string) string {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return ""
	}
	return string(b)
}

func cloneQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}
