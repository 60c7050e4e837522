package main

import (
	"net/http"

	"github.com/deskrelay/deskrelay/api"
)

// handleOpenAPI is GET /v1/openapi.json: the OpenAPI 3.1 description of
// every route (api/openapi.json), without auth.
func handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(api.OpenAPI)
}

// observeResponse, when set, is told the matched route pattern and the
// status of every answer. Only the tests set it (openapi_test.go), to check
// that every answer is documented in api/openapi.json; nil in production.
var observeResponse func(method, pattern string, status int)

// observed wraps the routes so that observeResponse sees every answer.
func observed(h http.Handler) http.Handler {
	report := observeResponse
	if report == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		// ServeMux sets r.Pattern on this very request when it matches.
		report(r.Method, r.Pattern, sw.statusOr200())
	})
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusWriter) statusOr200() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// Unwrap lets http.ResponseController reach the real writer (flush, deadlines).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
