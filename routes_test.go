package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
)

// call sends one request with optional basic auth and headers and returns
// the answer's status, headers and body.
func call(t *testing.T, method, url string, login [2]string, headers map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if login[0] != "" {
		req.SetBasicAuth(login[0], login[1])
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

// TestAdminRoutesRefuseOtherSites: a page on another site cannot drive an
// admin's browser into pausing a queue (issue 13.3); the admin's own UI,
// the same site by Host or by DESKRELAY_PUBLIC_URL, can.
func TestAdminRoutesRefuseOtherSites(t *testing.T) {
	db := redistest.New(t)
	env := daemonEnv(t, db.URL(), newTestZendesk(t))
	env["DESKRELAY_PUBLIC_URL"] = "https://relay.example.com"
	base, _, _ := startDaemon(t, env)
	admin := [2]string{"admin", env["DESKRELAY_ADMIN_PASSWORD"]}
	insp := asynq.NewInspector(db.AsynqOpt())
	t.Cleanup(func() { _ = insp.Close() })
	knowOutbound(t, base, env)
	pause := base + "/monitoring/api/queues/" + queues.Outbound + ":pause"
	resume := base + "/monitoring/api/queues/" + queues.Outbound + ":resume"

	tests := []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{name: "OtherOriginRefused", headers: map[string]string{"Origin": "http://evil.example"}, want: http.StatusForbidden},
		{name: "OtherRefererRefused", headers: map[string]string{"Referer": "http://evil.example/page"}, want: http.StatusForbidden},
		{name: "NullOriginRefused", headers: map[string]string{"Origin": "null"}, want: http.StatusForbidden},
		{name: "CrossSiteFetchRefused", headers: map[string]string{"Sec-Fetch-Site": "cross-site"}, want: http.StatusForbidden},
		{name: "SameHostPasses", headers: map[string]string{"Origin": base}, want: http.StatusNoContent},
		{name: "PublicURLPasses", headers: map[string]string{"Origin": "https://relay.example.com"}, want: http.StatusNoContent},
		{name: "NoBrowserHeadersPasses", headers: nil, want: http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := call(t, http.MethodPost, pause, admin, tt.headers)
			if code != tt.want {
				t.Fatalf("POST pause = %d %s, want %d", code, body, tt.want)
			}
			paused := queuePaused(t, insp, queues.Outbound)
			if paused != (tt.want == http.StatusNoContent) {
				t.Fatalf("queue paused = %v after a %d answer", paused, code)
			}
			if paused {
				if code, _, body := call(t, http.MethodPost, resume, admin, tt.headers); code != http.StatusNoContent {
					t.Fatalf("POST resume = %d %s", code, body)
				}
			}
		})
	}
	// Reads from anywhere stay allowed: they change nothing.
	if code, _, _ := call(t, http.MethodGet, base+"/monitoring/api/queues", admin, map[string]string{"Origin": "http://evil.example"}); code != http.StatusOK {
		t.Fatalf("GET queues with another Origin = %d, want 200", code)
	}
}

// knowOutbound sends one message through, so that asynq knows the outbound
// queue (it lists a queue once a task went through it).
func knowOutbound(t *testing.T, base string, env map[string]string) {
	t.Helper()
	bearer := "Bearer " + env["DESKRELAY_INGEST_TOKEN"]
	msg := `{"id":"msg_routes_1","conversation_id":"conv_routes","sequence":1,"author":{"email":"ann@example.com"},"body":"hello"}`
	if code, body := doJSON(t, http.MethodPost, base+"/v1/messages", bearer, msg); code != http.StatusAccepted {
		t.Fatalf("post: %d %v", code, body)
	}
	testutil.WaitFor(t, 20*time.Second, func() bool {
		_, st := doJSON(t, http.MethodGet, base+"/v1/messages/msg_routes_1", bearer, "")
		return st["status"] == "delivered"
	}, "the message delivered")
}

func queuePaused(t *testing.T, insp *asynq.Inspector, queue string) bool {
	t.Helper()
	info, err := insp.GetQueueInfo(queue)
	if err != nil {
		t.Fatalf("queue %s: %v", queue, err)
	}
	return info.Paused
}

// TestAdminRoutesNotFramable: the UI refuses to be framed and answers carry
// nosniff, so another site can neither overlay it nor sniff its JSON.
func TestAdminRoutesNotFramable(t *testing.T) {
	db := redistest.New(t)
	env := daemonEnv(t, db.URL(), newTestZendesk(t))
	base, _, _ := startDaemon(t, env)
	admin := [2]string{"admin", env["DESKRELAY_ADMIN_PASSWORD"]}
	for _, path := range []string{"/monitoring/", "/monitoring/api/queues", "/v1/status"} {
		code, h, _ := call(t, http.MethodGet, base+path, admin, nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d", path, code)
		}
		if got := h.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("GET %s: X-Frame-Options = %q, want DENY", path, got)
		}
		if got := h.Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy = %q, want frame-ancestors 'none'", path, got)
		}
		if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options = %q, want nosniff", path, got)
		}
	}
	if _, h, _ := call(t, http.MethodGet, base+"/healthz", [2]string{}, nil); h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET /healthz (JSON): X-Content-Type-Options = %q, want nosniff", h.Get("X-Content-Type-Options"))
	}
}

// TestViewerLoginReadsOnly: DESKRELAY_VIEWER_USER/_PASSWORD may look at
// /monitoring/ and /v1/status but change nothing.
func TestViewerLoginReadsOnly(t *testing.T) {
	db := redistest.New(t)
	env := daemonEnv(t, db.URL(), newTestZendesk(t))
	env["DESKRELAY_VIEWER_USER"] = "viewer"
	env["DESKRELAY_VIEWER_PASSWORD"] = "viewer-password-SECRET7"
	base, logs, stop := startDaemon(t, env)
	viewer := [2]string{"viewer", env["DESKRELAY_VIEWER_PASSWORD"]}
	insp := asynq.NewInspector(db.AsynqOpt())
	t.Cleanup(func() { _ = insp.Close() })
	knowOutbound(t, base, env)

	for _, path := range []string{"/v1/status", "/monitoring/", "/monitoring/api/queues"} {
		if code, _, body := call(t, http.MethodGet, base+path, viewer, nil); code != http.StatusOK {
			t.Fatalf("viewer GET %s = %d %s, want 200", path, code, body)
		}
	}
	if code, _, _ := call(t, http.MethodHead, base+"/v1/status", viewer, nil); code != http.StatusOK {
		t.Fatalf("viewer HEAD /v1/status = %d, want 200", code)
	}
	code, _, body := call(t, http.MethodPost, base+"/monitoring/api/queues/"+queues.Outbound+":pause", viewer, nil)
	if code != http.StatusForbidden || !strings.Contains(body, `"read_only"`) {
		t.Fatalf("viewer POST pause = %d %s, want 403 read_only", code, body)
	}
	if queuePaused(t, insp, queues.Outbound) {
		t.Fatal("the viewer paused the outbound queue")
	}
	if code, _, _ := call(t, http.MethodDelete, base+"/monitoring/api/queues/"+queues.Outbound, viewer, nil); code != http.StatusForbidden {
		t.Fatalf("viewer DELETE queue = %d, want 403", code)
	}
	if code, _, _ := call(t, http.MethodGet, base+"/v1/status", [2]string{"viewer", "wrong"}, nil); code != http.StatusUnauthorized {
		t.Fatalf("viewer with a wrong password = %d, want 401", code)
	}
	// The viewer's UI is asynqmon's read-only one: no pause buttons to press.
	if _, _, page := call(t, http.MethodGet, base+"/monitoring/", viewer, nil); !strings.Contains(page, `READ_ONLY="true"`) {
		t.Errorf("the viewer's /monitoring/ page is not asynqmon's read-only UI")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, env, logs.String())
}

// TestMetricsListenSeparate: with DESKRELAY_METRICS_LISTEN, /metrics is
// served on that address only; the main listener (the one Zendesk calls)
// answers 404 for it (issue 13.6).
func TestMetricsListenSeparate(t *testing.T) {
	db := redistest.New(t)
	env := daemonEnv(t, db.URL(), newTestZendesk(t))
	env["DESKRELAY_METRICS_LISTEN"] = "127.0.0.1:0"
	base, logs, stop := startDaemon(t, env)

	addrRE := regexp.MustCompile(`"addr":"([^"]+)"[^\n]*"message":"metrics listening"`)
	var metricsBase string
	testutil.WaitFor(t, 10*time.Second, func() bool {
		m := addrRE.FindStringSubmatch(logs.String())
		if m != nil {
			metricsBase = "http://" + m[1]
		}
		return m != nil
	}, "the metrics listener's address in the log")

	if code, _, _ := call(t, http.MethodGet, base+"/metrics", [2]string{}, nil); code != http.StatusNotFound {
		t.Fatalf("main listener GET /metrics = %d, want 404", code)
	}
	code, _, body := call(t, http.MethodGet, metricsBase+"/metrics", [2]string{}, nil)
	if code != http.StatusOK || !strings.Contains(body, `deskrelay_queue_size{queue="outbound"}`) {
		t.Fatalf("metrics listener GET /metrics = %d, want 200 with deskrelay_queue_size:\n%.300s", code, body)
	}
	if code, _, _ := call(t, http.MethodGet, metricsBase+"/v1/status", [2]string{"admin", env["DESKRELAY_ADMIN_PASSWORD"]}, nil); code != http.StatusNotFound {
		t.Fatalf("metrics listener GET /v1/status = %d, want 404: it serves /metrics only", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(metricsBase + "/metrics"); err == nil {
		resp.Body.Close()
		t.Fatal("the metrics listener still answers after shutdown")
	}
}
