package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// TestSentinelDelivers: DESKRELAY_REDIS_URL=redis-sentinel://…?master=name
// (the sentinels' address; the master's password in
// DESKRELAY_REDIS_PASSWORD) still works: serve finds the master through the
// sentinel and delivers a message.
func TestSentinelDelivers(t *testing.T) {
	const pw = "redis-master-pw-SECRET11"
	master := redistest.StartServer(t, redistest.ServerOptions{Password: pw})
	s := redistest.StartSentinel(t, master, "deskrelay")
	zd := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	env := daemonEnv(t, s.URL(), zd.URL())
	env["DESKRELAY_REDIS_PASSWORD"] = pw
	base, logs, stop := startDaemon(t, env)
	bearer := "Bearer " + env["DESKRELAY_INGEST_TOKEN"]
	msg := `{"id":"msg_sentinel_1","conversation_id":"conv_sentinel","sequence":1,"author":{"email":"ann@example.com"},"body":"via sentinel"}`
	if code, body := doJSON(t, http.MethodPost, base+"/v1/messages", bearer, msg); code != http.StatusAccepted {
		t.Fatalf("post: %d %v", code, body)
	}
	testutil.WaitFor(t, 30*time.Second, func() bool {
		_, st := doJSON(t, http.MethodGet, base+"/v1/messages/msg_sentinel_1", bearer, "")
		return st["status"] == "delivered"
	}, "the message delivered through the sentinel's master")
	if got := zd.TicketsByExternalID("conv_sentinel"); len(got) != 1 {
		t.Fatalf("tickets = %d, want 1", len(got))
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	assertNoSecrets(t, env, logs.String())
}
