package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// sink plays the platform's sink for trying deskrelay by hand: point
// DESKRELAY_SINK_URL at /_fake/sink, and every delivery is printed and kept
// for GET /_fake/sink. It answers 204 and checks no signature.
type sink struct {
	mu  sync.Mutex
	out io.Writer
	got []json.RawMessage
}

const sinkUsage = `  POST /_fake/sink
	a platform sink for DESKRELAY_SINK_URL: prints each delivery's webhook-id and body, answers 204
  GET /_fake/sink
	the deliveries received so far, as a JSON array
`

func (s *sink) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil || !json.Valid(body) {
		http.Error(w, "want a JSON body of at most 1 MiB", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.got = append(s.got, body)
	fmt.Fprintf(s.out, "sink: webhook-id %s: %s\n", r.Header.Get("webhook-id"), body)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *sink) list(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	got := s.got
	if got == nil {
		got = []json.RawMessage{}
	}
	_ = json.NewEncoder(w).Encode(got)
}
