package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// outcomeSink is the platform's sink: it verifies each delivery's
// signature and keeps the message outcome events.
type outcomeSink struct {
	wh       *standardwebhooks.Webhook
	mu       sync.Mutex
	outcomes []map[string]any
	bad      int
}

func (s *outcomeSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var ev map[string]any
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.wh.Verify(b, r.Header); err != nil || json.Unmarshal(b, &ev) != nil || ev["id"] != r.Header.Get("webhook-id") {
		s.bad++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if ev["message_id"] != nil {
		s.outcomes = append(s.outcomes, ev)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *outcomeSink) received() ([]map[string]any, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.outcomes...), s.bad
}

// TestServeTellsOutcomes: with DESKRELAY_SINK_OUTCOMES=delivered, serve
// tells the sink of a delivered message and of one failed as unauthorized,
// each once, signed like ticket events.
func TestServeTellsOutcomes(t *testing.T) {
	db := redistest.New(t)
	zd := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1", Logf: func(string, ...any) {}})
	env := daemonEnv(t, db.URL(), zd.URL())
	wh, err := standardwebhooks.NewWebhook(env["DESKRELAY_SINK_SECRET"])
	if err != nil {
		t.Fatal(err)
	}
	sink := &outcomeSink{wh: wh}
	hs := httptest.NewServer(sink)
	t.Cleanup(hs.Close)
	env["DESKRELAY_SINK_URL"] = hs.URL
	env["DESKRELAY_SINK_OUTCOMES"] = "delivered"
	base, logs, stop := startDaemon(t, env)

	post := func(id string) {
		t.Helper()
		body := `{"id":"` + id + `","conversation_id":"conv_out","author":{"email":"ann@example.com"},"body":"hello ` + id + `"}`
		if code, _ := doJSON(t, http.MethodPost, base+"/v1/messages", "Bearer "+env["DESKRELAY_INGEST_TOKEN"], body); code != http.StatusAccepted {
			t.Fatalf("POST %s = %d, want 202", id, code)
		}
	}
	post("out-1")
	testutil.WaitFor(t, 20*time.Second, func() bool { got, _ := sink.received(); return len(got) >= 1 }, "message.delivered on the sink")
	zd.RevokeCredentials()
	post("out-2")
	testutil.WaitFor(t, 20*time.Second, func() bool { got, _ := sink.received(); return len(got) >= 2 }, "message.failed on the sink")
	if err := stop(); err != nil {
		t.Fatalf("serve: %v\n%s", err, logs.String())
	}
	got, bad := sink.received()
	if bad != 0 || len(got) != 2 {
		t.Fatalf("sink got %d outcomes (%d unverifiable), want 2: %v", len(got), bad, got)
	}
	d, f := got[0], got[1]
	if d["type"] != "message.delivered" || d["id"] != "msg:out-1:delivered" || d["conversation_id"] != "conv_out" ||
		d["account"] != "default" || d["ticket_id"] == nil || d["comment_id"] == nil || d["occurred_at"] == nil {
		t.Errorf("first outcome %v, want message.delivered of out-1", d)
	}
	if f["type"] != "message.failed" || f["id"] != "msg:out-2:failed:0" || f["reason"] != "unauthorized" ||
		f["last_error"] == "" || f["last_error"] == nil || f["account"] != "default" {
		t.Errorf("second outcome %v, want message.failed of out-2 as unauthorized", f)
	}
	assertNoSecrets(t, env, logs.String())
}
