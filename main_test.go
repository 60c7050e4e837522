package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/logging"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
	"go.uber.org/goleak"
)

// Some Redis clients of the daemon are never closed, and each leaves
// go-redis's circuit-breaker cleanup goroutine behind: among them the asynqmon handler
// (routes.go: asynqmon.New without Close) and the asynq server of a daemon
// that was built but never started (asynq's Shutdown does nothing then, so
// daemon.close does not close its client). Ignored here, and only here, until
// serve.go/routes.go close them.
func TestMain(m *testing.M) {
	testutil.VerifyTestMain(withOpenAPIConformance(m),
		goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/maintnotifications.(*CircuitBreakerManager).cleanupLoop"))
}

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantErr  string
		wantOut  string
		wantCode int

		wantStderr string
	}{
		{name: "UnknownCommandHints", args: []string{"serv"}, wantStderr: `unknown command "serv" (did you mean "serve"?)`, wantCode: 2},
		{name: "NoCommandPrintsUsage", args: nil, wantStderr: "Usage: deskrelay <command>", wantCode: 2},
		{name: "HelpListsCommands", args: []string{"help"}, wantOut: "serve"},
		{name: "CommandHelp", args: []string{"serve", "-h"}, wantOut: "DESKRELAY_INGEST_TOKEN"},
		{name: "Version", args: []string{"version"}, wantOut: "(commit "},
		{name: "VersionNamesGo", args: []string{"version"}, wantOut: ", go1."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, envFrom(nil), &out, &errb)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
			}
			if tt.wantCode != 0 {
				if err == nil || exitStatus(err) != tt.wantCode {
					t.Fatalf("exit status of %v = %d, want %d", err, exitStatus(err), tt.wantCode)
				}
			} else if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !strings.Contains(errb.String(), tt.wantStderr) {
				t.Fatalf("stderr = %q, want it to contain %q", errb.String(), tt.wantStderr)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Fatalf("stdout = %q, want it to contain %q", out.String(), tt.wantOut)
			}
		})
	}
}

func TestServeBadSettingsNameEachSetting(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		wants []string
	}{
		{
			name:  "NothingSet",
			env:   nil,
			wants: []string{"DESKRELAY_INGEST_TOKEN: required", "DESKRELAY_ZENDESK_SUBDOMAIN: required", "no Zendesk credentials"},
		},
		{
			name: "TwoAuthMethodsAndBadValues",
			env: map[string]string{
				"DESKRELAY_INGEST_TOKEN":        "t",
				"DESKRELAY_ZENDESK_SUBDOMAIN":   "acme",
				"DESKRELAY_ZENDESK_EMAIL":       "a@example.com",
				"DESKRELAY_ZENDESK_API_TOKEN":   "apitok",
				"DESKRELAY_ZENDESK_OAUTH_TOKEN": "oauthtok",
				"DESKRELAY_CONCURRENCY":         "-3",
				"DESKRELAY_RETRY_MAX_DELAY":     "soon",
				"DESKRELAY_SINK_SECRET":         "nope",
				"DESKRELAY_REDIS_URL":           "mysql://u:hunter2@x/1",
			},
			wants: []string{
				"more than one way of authenticating",
				"DESKRELAY_CONCURRENCY: must be a positive whole number",
				`DESKRELAY_RETRY_MAX_DELAY: "soon" is not a duration`,
				"DESKRELAY_SINK_SECRET: must start with whsec_",
				"DESKRELAY_REDIS_URL: unsupported scheme",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"serve"}, envFrom(tt.env), &out, &errb)
			if exitStatus(err) != 2 {
				t.Fatalf("exit status = %d (%v), want 2", exitStatus(err), err)
			}
			for _, w := range tt.wants {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
			for _, secret := range []string{"hunter2", "apitok", "oauthtok"} {
				if strings.Contains(errb.String()+out.String(), secret) {
					t.Errorf("output leaks secret %q:\n%s", secret, errb.String())
				}
			}
		})
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	var errb bytes.Buffer
	err := run(context.Background(), []string{"serve", "-concurrency", "0"},
		envFrom(map[string]string{"DESKRELAY_CONCURRENCY": "5"}), &bytes.Buffer{}, &errb)
	if exitStatus(err) != 2 || !strings.Contains(errb.String(), `--concurrency: must be a positive whole number, got "0"`) {
		t.Fatalf("flag did not override the environment: %v\n%s", err, errb.String())
	}
}

// daemonEnv is a complete, valid environment for serve, with secrets that
// must never appear in any output.
func daemonEnv(t *testing.T, redisURL, zendeskURL string) map[string]string {
	t.Helper()
	return map[string]string{
		"DESKRELAY_LISTEN":             "127.0.0.1:0",
		"DESKRELAY_REDIS_URL":          redisURL,
		"DESKRELAY_ZENDESK_URL":        zendeskURL,
		"DESKRELAY_ZENDESK_EMAIL":      "agent@example.com",
		"DESKRELAY_ZENDESK_API_TOKEN":  "zd-api-token-SECRET1",
		"DESKRELAY_INGEST_TOKEN":       "ingest-token-SECRET2",
		"DESKRELAY_WEBHOOK_SECRET":     "webhook-secret-SECRET3",
		"DESKRELAY_SINK_URL":           "http://127.0.0.1:1/sink",
		"DESKRELAY_SINK_SECRET":        "whsec_c2VjcmV0LXNpbmstU0VDUkVUNA==",
		"DESKRELAY_ADMIN_USER":         "admin",
		"DESKRELAY_ADMIN_PASSWORD":     "admin-password-SECRET5",
		"DESKRELAY_TARGET_USER":        "zendesk",
		"DESKRELAY_TARGET_PASSWORD":    "target-password-SECRET6",
		"DESKRELAY_RECONCILE_INTERVAL": "0",
		"DESKRELAY_SPOOL_DIR":          t.TempDir(),
		"DESKRELAY_LOG_LEVEL":          "debug",
		"DESKRELAY_SHUTDOWN_TIMEOUT":   "5s",
	}
}

// startDaemon runs `deskrelay serve` in the background and returns its base
// URL once /healthz answers, plus a stop function that returns run's error.
func startDaemon(t *testing.T, env map[string]string) (base string, logs *testutil.SyncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &testutil.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, envFrom(env), logs, logs) }()
	addrRE := regexp.MustCompile(`"addr":"([^"]+)"[^\n]*"message":"deskrelay listening"`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			base = "http://" + m[1]
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve exited early: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start listening within 15s:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(20 * time.Second):
				runErr = errors.New("serve did not stop within 20s of cancellation")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return base, logs, stop
}

func getStatus(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestServeHealthAndGracefulStop(t *testing.T) {
	db := redistest.New(t)
	zd := newTestZendesk(t)
	env := daemonEnv(t, db.URL(), zd)
	base, logs, stop := startDaemon(t, env)

	if code, _ := getStatus(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d, want 200", code)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool {
		code, _ := getStatus(t, base+"/readyz")
		return code == http.StatusOK
	}, "readyz 200")
	if code, body := getStatus(t, base+"/nope"); code != http.StatusNotFound || body["error"] == nil {
		t.Fatalf("unknown route = %d %v, want 404 with an error body", code, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v after cancellation, want nil\n%s", err, logs.String())
	}
	assertNoSecrets(t, env, logs.String())
	assertJSONLogs(t, logs.String())
	if !strings.Contains(logs.String(), `"message":"deskrelay starting"`) || !strings.Contains(logs.String(), `"reconcile_interval_ms":`) {
		t.Errorf("no start-up line with version and parts:\n%s", logs.String())
	}
}

// assertJSONLogs checks that every log line is JSON (a buffer is no
// terminal) with each key once.
func assertJSONLogs(t *testing.T, logs string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		dups, err := logging.DuplicateKeys([]byte(line))
		if err != nil || len(dups) > 0 {
			t.Errorf("log line %s: duplicate keys %v (%v)", line, dups, err)
		}
	}
}

func assertNoSecrets(t *testing.T, env map[string]string, output string) {
	t.Helper()
	for _, s := range settings {
		v := env[s.env]
		if !s.secret || v == "" || s.env == "DESKRELAY_REDIS_URL" {
			continue
		}
		if strings.Contains(output, v) {
			t.Errorf("output contains the value of %s", s.env)
		}
	}
	if strings.Contains(output, "Authorization") && strings.Contains(output, "Basic ") {
		t.Errorf("output contains an Authorization header")
	}
}

// TestREADMESettings keeps README.md's configuration table and the code's
// settings list in step: same names, same defaults, nothing missing.
func TestREADMESettings(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	rowRE := regexp.MustCompile("(?m)^\\| `(DESKRELAY_[A-Z_]+)` \\| ([^|]*)\\|")
	rows := map[string]string{}
	for _, m := range rowRE.FindAllStringSubmatch(string(raw), -1) {
		rows[m[1]] = strings.Trim(strings.TrimSpace(m[2]), "`")
	}
	for _, s := range settings {
		def, ok := rows[s.env]
		if !ok {
			t.Errorf("README.md's configuration table lacks %s", s.env)
			continue
		}
		want := s.def
		if want == "" {
			want = "—"
		}
		if def != want {
			t.Errorf("README.md says %s defaults to %q; the code says %q", s.env, def, want)
		}
		delete(rows, s.env)
	}
	for env := range rows {
		t.Errorf("README.md documents %s, which the code does not know", env)
	}
	if len(settings) < 30 {
		t.Fatalf("settings list unexpectedly short: %d", len(settings))
	}
}

func doJSON(t *testing.T, method, url, auth string, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestServeEndToEnd drives the daemon through its routes: intake with the
// ingest token, forwarding to (fake) Zendesk, status, metrics and the admin
// routes' auth, and checks that no secret reaches the logs.
func TestServeEndToEnd(t *testing.T) {
	db := redistest.New(t)
	zd := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	env := daemonEnv(t, db.URL(), zd.URL())
	base, logs, stop := startDaemon(t, env)
	bearer := "Bearer " + env["DESKRELAY_INGEST_TOKEN"]

	msg := `{"id":"msg_e2e_1","conversation_id":"conv_e2e","sequence":1,"author":{"name":"Ann","email":"ann@example.com"},"body":"The app crashes on Save"}`
	if code, body := doJSON(t, http.MethodPost, base+"/v1/messages", "Bearer wrong", msg); code != http.StatusUnauthorized || body["error"] == nil {
		t.Fatalf("wrong token: %d %v", code, body)
	}
	if code, body := doJSON(t, http.MethodPost, base+"/v1/messages", bearer, msg); code != http.StatusAccepted || body["status"] != "queued" {
		t.Fatalf("post: %d %v", code, body)
	}
	testutil.WaitFor(t, 20*time.Second, func() bool {
		_, st := doJSON(t, http.MethodGet, base+"/v1/messages/msg_e2e_1", bearer, "")
		return st["status"] == "delivered"
	}, "the message delivered")
	if got := zd.TicketsByExternalID("conv_e2e"); len(got) != 1 {
		t.Fatalf("tickets for conv_e2e = %d, want 1", len(got))
	}
	if code, _ := doJSON(t, http.MethodPost, base+"/v1/messages", bearer, msg); code != http.StatusOK {
		t.Fatalf("the same message again = %d, want 200", code)
	}

	if code, _ := doJSON(t, http.MethodGet, base+"/v1/status", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("/v1/status without auth = %d, want 401", code)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/status", nil)
	req.SetBasicAuth("admin", env["DESKRELAY_ADMIN_PASSWORD"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st statusReport
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || st.Redis != "ok" || st.Credentials.Mode != "api-token" || st.Credentials.APITokenRetiresAt == nil {
		t.Fatalf("/v1/status = %d %+v", resp.StatusCode, st)
	}
	if code, _ := doJSON(t, http.MethodGet, base+"/monitoring/", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("/monitoring/ without auth = %d, want 401", code)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`deskrelay_queue_size{queue="outbound"}`, `deskrelay_zendesk_auth_mode{account="default",mode="api_token",retires="2027-04-30"} 1`, `deskrelay_build_info{commit=`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	assertNoSecrets(t, env, logs.String())
	assertJSONLogs(t, logs.String())
}

// TestServeStopWithWorkInFlightLosesNothing: cancelling serve (SIGTERM) while
// Zendesk is slow stops intake, finishes or hands back the in-flight
// messages, returns nil; a second serve on the same Redis delivers every
// accepted message exactly once.
func TestServeStopWithWorkInFlightLosesNothing(t *testing.T) {
	db := redistest.New(t)
	zd := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	zd.SetLatency(300 * time.Millisecond)
	env := daemonEnv(t, db.URL(), zd.URL())
	env["DESKRELAY_SHUTDOWN_TIMEOUT"] = "1s"
	base, logs, stop := startDaemon(t, env)
	bearer := "Bearer " + env["DESKRELAY_INGEST_TOKEN"]

	var ids []string
	for c := 0; c < 4; c++ {
		for s := 1; s <= 3; s++ {
			id := "msg_stop_" + strconv.Itoa(c) + "_" + strconv.Itoa(s)
			body := `{"id":"` + id + `","conversation_id":"conv_stop_` + strconv.Itoa(c) + `","sequence":` + strconv.Itoa(s) +
				`,"author":{"email":"u` + strconv.Itoa(c) + `@example.com"},"body":"message ` + id + `"}`
			if code, got := doJSON(t, http.MethodPost, base+"/v1/messages", bearer, body); code != http.StatusAccepted {
				t.Fatalf("post %s: %d %v", id, code, got)
			}
			ids = append(ids, id)
		}
	}
	// Stop while Zendesk calls are in flight.
	testutil.WaitFor(t, 10*time.Second, func() bool { return zd.CountRequests(http.MethodPost, "/api/v2/tickets") > 0 }, "a Zendesk call in flight")
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v on SIGTERM, want nil\n%s", err, logs.String())
	}
	if resp, err := http.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("intake still answers after shutdown")
	}

	zd.SetLatency(0)
	base2, _, _ := startDaemon(t, env)
	testutil.WaitFor(t, 60*time.Second, func() bool {
		for _, id := range ids {
			if _, st := doJSON(t, http.MethodGet, base2+"/v1/messages/"+id, bearer, ""); st["status"] != "delivered" {
				return false
			}
		}
		return true
	}, "every accepted message delivered after the restart")
	for c := 0; c < 4; c++ {
		tickets := zd.TicketsByExternalID("conv_stop_" + strconv.Itoa(c))
		if len(tickets) != 1 {
			t.Fatalf("conversation %d has %d tickets, want 1", c, len(tickets))
		}
		var bodies []string
		for _, cm := range zd.Comments(tickets[0].ID) {
			bodies = append(bodies, strings.TrimSpace(cm.Body))
		}
		want := []string{}
		for s := 1; s <= 3; s++ {
			want = append(want, "message msg_stop_"+strconv.Itoa(c)+"_"+strconv.Itoa(s))
		}
		if strings.Join(bodies, "|") != strings.Join(want, "|") {
			t.Fatalf("conversation %d comments = %q, want %q (each once, in order)", c, bodies, want)
		}
	}
}
