package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// TestServeWaitsForWebhookSecret: with a webhook id and no secret, a
// Zendesk that does not answer at start leaves the receiver waiting, not
// off: the route answers 503 with Retry-After, /v1/status, `webhook status`
// and the metric say it waits, and /readyz does not care.
func TestServeWaitsForWebhookSecret(t *testing.T) {
	db := redistest.New(t)
	zd := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	hook := zd.AddWebhook("https://relay.example.com/v1/zendesk/webhook", "zendesk-given-secret")
	zd.FailNext(10000, http.StatusServiceUnavailable, zendesktest.Matching(http.MethodGet, "/api/v2/webhooks/"+hook+"/signing_secret"))
	env := daemonEnv(t, db.URL(), zd.URL())
	env["DESKRELAY_WEBHOOK_SECRET"] = ""
	env["DESKRELAY_ZENDESK_WEBHOOK_ID"] = hook
	base, logs, stop := startDaemon(t, env)
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()

	resp, err := http.Post(base+"/v1/zendesk/webhook", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "10" {
		t.Fatalf("webhook while waiting for the secret = %d Retry-After %q, want 503 with 10", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	testutil.WaitFor(t, 20*time.Second, func() bool {
		st := adminStatus(t, base, env)
		return st.Inbound != nil && st.Inbound.Receiver != nil && st.Inbound.Receiver.LastError != ""
	}, "/v1/status to show the failed read")
	st := adminStatus(t, base, env)
	if st.Inbound.ReceiverOn || st.Inbound.Receiver.State != inbound.ReceiverWaiting {
		t.Fatalf("/v1/status inbound = %+v, receiver %+v; want receiver_on false, state waiting_for_secret", st.Inbound, st.Inbound.Receiver)
	}
	if code, _ := getStatus(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d while waiting for the secret, want 200 (Redis and workers only)", code)
	}
	raw := get(t, base+"/metrics")
	if !strings.Contains(raw, `deskrelay_webhook_receiver_state{account="default",state="waiting_for_secret"} 1`) {
		t.Errorf("/metrics lacks the waiting receiver state")
	}

	var out, errb bytes.Buffer
	err = run(context.Background(), []string{"webhook", "status"}, envFrom(env), &out, &errb)
	if exitStatus(err) != 1 || !strings.Contains(out.String(), "waiting for the webhook's signing secret") {
		t.Fatalf("webhook status while waiting: exit %d (%v), out:\n%s\n%s", exitStatus(err), err, out.String(), errb.String())
	}
	assertNoSecrets(t, env, logs.String()+out.String())
}

func adminStatus(t *testing.T, base string, env map[string]string) statusReport {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/status", nil)
	req.SetBasicAuth("admin", env["DESKRELAY_ADMIN_PASSWORD"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st statusReport
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
