package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deskrelay/deskrelay/internal/httpx"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/queues"
	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/relay"
)

const ingestToken = "test-ingest-token"

func intakeServer(tb testing.TB, r *relay.Relay) *httptest.Server {
	tb.Helper()
	mux := http.NewServeMux()
	mux.Handle("POST /v1/messages", httpx.RequireBearer(ingestToken, relay.PostMessage(relay.Single(r))))
	mux.Handle("GET /v1/messages/{id}", httpx.RequireBearer(ingestToken, relay.GetMessage(relay.Single(r))))
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv
}

type answer struct {
	status int
	body   map[string]any
	raw    string
}

func do(tb testing.TB, method, url, contentType, token, body string) answer {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	a := answer{status: res.StatusCode, raw: buf.String()}
	_ = json.Unmarshal(buf.Bytes(), &a.body)
	return a
}

func errorCode(a answer) (string, string) {
	e, _ := a.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	message, _ := e["message"].(string)
	return code, message
}

// nothingKept asserts that intake left no trace: no asynq task and no key
// of deskrelay's own.
func nothingKept(tb testing.TB, rdb redis.UniversalClient, opt asynq.RedisConnOpt) {
	tb.Helper()
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	if n := queueSize(tb, insp); n != 0 {
		tb.Errorf("outbound queue holds %d tasks, want 0", n)
	}
	ks, err := rdb.Keys(context.Background(), "deskrelay:*").Result()
	if err != nil {
		tb.Fatalf("keys: %v", err)
	}
	if len(ks) != 0 {
		tb.Errorf("deskrelay keys left: %v", ks)
	}
}

// queueSize is the outbound queue's size (0 when asynq never saw it).
func queueSize(tb testing.TB, insp *asynq.Inspector) int {
	tb.Helper()
	qs, err := insp.Queues()
	if err != nil {
		tb.Fatalf("queues: %v", err)
	}
	if !slices.Contains(qs, queues.Outbound) {
		return 0
	}
	qi, err := insp.GetQueueInfo(queues.Outbound)
	if err != nil {
		tb.Fatalf("queue info: %v", err)
	}
	return qi.Size
}

const goodBody = `{"id":"msg_1","conversation_id":"conv_1","sequence":1,"author":{"id":"u7","name":"Ann Lee","email":"ann@example.com"},"body":"The app crashes","subject":"Crash","created_at":"2026-11-24T10:00:00Z","tags":["ios"],"custom_fields":[{"id":360001,"value":"gold"}],"account":"default"}`

func TestIntakeRejects(t *testing.T) {
	e := newEnv(t, envOptions{noWorkers: true})
	srv := intakeServer(t, e.relay)
	url := srv.URL + "/v1/messages"
	with := func(edit func(m map[string]any)) string {
		var m map[string]any
		_ = json.Unmarshal([]byte(goodBody), &m)
		edit(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name        string
		contentType string
		token       string
		body        string
		wantStatus  int
		wantCode    string
		wantInMsg   string
	}{
		{name: "NoTokenIs401", contentType: "application/json", body: goodBody, wantStatus: 401, wantCode: "unauthorized"},
		{name: "WrongTokenIs401", contentType: "application/json", token: "nope", body: goodBody, wantStatus: 401, wantCode: "unauthorized"},
		{name: "TextPlainIs415", contentType: "text/plain", token: ingestToken, body: goodBody, wantStatus: 415, wantCode: "unsupported_media_type"},
		{name: "NoContentTypeIs415", token: ingestToken, body: goodBody, wantStatus: 415, wantCode: "unsupported_media_type"},
		{name: "OverOneMiBIs413", contentType: "application/json", token: ingestToken,
			body: with(func(m map[string]any) { m["body"] = strings.Repeat("x", relay.MaxBodyBytes) }), wantStatus: 413, wantCode: "too_large"},
		{name: "TruncatedJSONIs400", contentType: "application/json", token: ingestToken, body: `{"id":"msg_1",`, wantStatus: 400, wantCode: "malformed_json"},
		{name: "TrailingDataIs400", contentType: "application/json", token: ingestToken, body: goodBody + `{}`, wantStatus: 400, wantCode: "malformed_json"},
		{name: "ArrayIs400", contentType: "application/json", token: ingestToken, body: `[1,2]`, wantStatus: 400, wantCode: "malformed_json"},
		{name: "MissingIDIs422", contentType: "application/json", token: ingestToken, body: with(func(m map[string]any) { delete(m, "id") }), wantStatus: 422, wantCode: "invalid_field", wantInMsg: "id:"},
		{name: "MissingConversationIs422", contentType: "application/json", token: ingestToken, body: with(func(m map[string]any) { m["conversation_id"] = "" }), wantStatus: 422, wantCode: "invalid_field", wantInMsg: "conversation_id"},
		{name: "NoAuthorIs422", contentType: "application/json", token: ingestToken, body: with(func(m map[string]any) { delete(m, "author") }), wantStatus: 422, wantCode: "invalid_field", wantInMsg: "author"},
		{name: "AuthorWithoutEmailOrIDIs422", contentType: "application/json", token: ingestToken, body: with(func(m map[string]any) { m["author"] = map[string]any{"name": "Ann"} }), wantStatus: 422, wantCode: "invalid_field", wantInMsg: "author"},
		{name: "BadEmailIs422", contentType: "application/json", token: ingestToken, body: with(func(m map[string]any) { m["author"] = map[string]any{"email": "not-an-email"} }), wantStatus: 422, wantCode: "invalid_field", wantInMsg: "author.email"},
		{name: "EmptyBodyIs422", contentType: "application/json", token: ingestToken, body: with(func(m map[string]any) { m["body"] = "  " }), wantStatus: 422, wantCode: "invalid_field", wantInMsg: "body"},
		{name: "BodyNotStringIs422", contentType: "application/json", token: ingestToken, body: with(func(m map[string]any) { m["body"] = 42 }), wantStatus: 422, wantCode: "invalid_field", wantInMsg: "body"},
		{name: "ZeroSequenceIs422", contentType: "application/json", token: ingestToken, body: with(func(m map[string]any) { m["sequence"] = 0 }), wantStatus: 422, wantCode: "invalid_field", wantInMsg: "sequence"},
		{name: "FractionalSequenceIs422", contentType: "application/json", token: ingestToken, body: with(func(m map[string]any) { m["sequence"] = 1.5 }), wantStatus: 422, wantCode: "invalid_field", wantInMsg: "sequence"},
		{name: "BadCreatedAtIs422", contentType: "application/json", token: ingestToken, body: with(func(m map[string]any) { m["created_at"] = "yesterday" }), wantStatus: 422, wantCode: "invalid_field", wantInMsg: "created_at"},
		{name: "BadCustomFieldIs422", contentType: "application/json", token: ingestToken, body: with(func(m map[string]any) { m["custom_fields"] = []any{map[string]any{"id": 0, "value": "x"}} }), wantStatus: 422, wantCode: "invalid_field", wantInMsg: "custom_fields[0].id"},
		{name: "BadTagIs422", contentType: "application/json", token: ingestToken, body: with(func(m map[string]any) { m["tags"] = []any{"two words"} }), wantStatus: 422, wantCode: "invalid_field", wantInMsg: "tags[0]"},
		{name: "UnknownAccountIs422", contentType: "application/json", token: ingestToken, body: with(func(m map[string]any) { m["account"] = "other" }), wantStatus: 422, wantCode: "unknown_account", wantInMsg: "account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, http.MethodPost, url, tt.contentType, tt.token, tt.body)
			if a.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", a.status, tt.wantStatus, a.raw)
			}
			code, message := errorCode(a)
			if code != tt.wantCode || !strings.Contains(message, tt.wantInMsg) {
				t.Errorf("error = %q %q, want code %q and a message naming %q", code, message, tt.wantCode, tt.wantInMsg)
			}
			nothingKept(t, e.rdb, e.opt)
		})
	}
}

func TestIntakeIdempotency(t *testing.T) {
	e := newEnv(t, envOptions{noWorkers: true})
	srv := intakeServer(t, e.relay)
	url := srv.URL + "/v1/messages"

	a := do(t, http.MethodPost, url, "application/json", ingestToken, goodBody)
	if a.status != 202 || a.body["id"] != "msg_1" || a.body["status"] != "queued" {
		t.Fatalf("first post = %d %s, want 202 queued", a.status, a.raw)
	}
	t.Run("SameContentIs200WithStatus", func(t *testing.T) {
		a := do(t, http.MethodPost, url, "application/json; charset=utf-8", ingestToken, goodBody)
		if a.status != 200 || a.body["status"] != "queued" || a.body["conversation_id"] != "conv_1" {
			t.Fatalf("repeat = %d %s, want 200 with the current status", a.status, a.raw)
		}
	})
	t.Run("OtherContentIs409", func(t *testing.T) {
		a := do(t, http.MethodPost, url, "application/json", ingestToken, strings.Replace(goodBody, "The app crashes", "Other text", 1))
		if code, _ := errorCode(a); a.status != 409 || code != "conflict" {
			t.Fatalf("conflict = %d %s, want 409 conflict", a.status, a.raw)
		}
	})
	t.Run("OneTaskOnly", func(t *testing.T) {
		qi, err := e.insp.GetQueueInfo(queues.Outbound)
		if err != nil || qi.Size != 1 {
			t.Fatalf("outbound queue = %+v, %v; want exactly 1 task", qi, err)
		}
	})
	t.Run("GetKnownIs200", func(t *testing.T) {
		a := do(t, http.MethodGet, srv.URL+"/v1/messages/msg_1", "", ingestToken, "")
		if a.status != 200 || a.body["status"] != "queued" || a.body["attempts"] != float64(0) {
			t.Fatalf("get = %d %s, want 200 queued", a.status, a.raw)
		}
	})
	t.Run("GetUnknownIs404", func(t *testing.T) {
		a := do(t, http.MethodGet, srv.URL+"/v1/messages/nope", "", ingestToken, "")
		if code, _ := errorCode(a); a.status != 404 || code != "not_found" {
			t.Fatalf("get unknown = %d %s, want 404 not_found", a.status, a.raw)
		}
	})
	t.Run("GetWithoutTokenIs401", func(t *testing.T) {
		if a := do(t, http.MethodGet, srv.URL+"/v1/messages/msg_1", "", "", ""); a.status != 401 {
			t.Fatalf("get without token = %d, want 401", a.status)
		}
	})
}

func TestIntakeUnavailable(t *testing.T) {
	t.Parallel()
	t.Run("RedisDownIs503", func(t *testing.T) {
		s := redistest.StartServer(t, redistest.ServerOptions{})
		rdb := s.Client(t)
		e := newEnv(t, envOptions{noWorkers: true, rdb: rdb, opt: s.AsynqOpt()})
		srv := intakeServer(t, e.relay)
		s.Kill(t)
		a := do(t, http.MethodPost, srv.URL+"/v1/messages", "application/json", ingestToken, goodBody)
		if code, _ := errorCode(a); a.status != 503 || code != "unavailable" {
			t.Fatalf("post with Redis down = %d %s, want 503 unavailable", a.status, a.raw)
		}
		s.Start(t)
		nothingKept(t, rdb, s.AsynqOpt())
	})
	t.Run("EnqueueFailureLeavesNoRecord", func(t *testing.T) {
		// deskrelay's record store answers, asynq's Redis does not: the
		// record written first must be taken back.
		dead := redistest.StartServer(t, redistest.ServerOptions{})
		dead.Kill(t)
		db := redistest.New(t)
		e := newEnv(t, envOptions{noWorkers: true, rdb: db.Client, opt: dead.AsynqOpt()})
		srv := intakeServer(t, e.relay)
		a := do(t, http.MethodPost, srv.URL+"/v1/messages", "application/json", ingestToken, goodBody)
		if code, _ := errorCode(a); a.status != 503 || code != "unavailable" {
			t.Fatalf("post with asynq down = %d %s, want 503 unavailable", a.status, a.raw)
		}
		nothingKept(t, db.Client, db.AsynqOpt())
	})
}

func TestIntakeInterrupted(t *testing.T) {
	t.Parallel()
	// A crash between the asynq task and marking the record "queued" leaves
	// a record in "accepting" whose conversation does not know it yet.
	interrupt := func(t *testing.T, e *env, m relay.Message) {
		t.Helper()
		ctx := context.Background()
		mustEnqueue(t, e.relay, m)
		if err := e.rdb.HSet(ctx, keys.Default.Message(m.ID), "state", "accepting").Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.Del(ctx, keys.Default.ConversationPending(m.ConversationID), keys.Default.ConversationOrder(m.ConversationID)).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := e.relay.Status(ctx, m.ID); !errors.Is(err, relay.ErrNotFound) {
			t.Fatalf("status of an unfinished intake = %v, want ErrNotFound (not acknowledged)", err)
		}
	}
	t.Run("PlatformRetryCompletesIt", func(t *testing.T) {
		e := newEnv(t, envOptions{noWorkers: true})
		m := msg("interrupted", 1)
		interrupt(t, e, m)
		st, created, err := e.relay.Enqueue(context.Background(), m)
		if err != nil || !created || st.Status != "queued" {
			t.Fatalf("retry = %+v created=%v err=%v; want accepted", st, created, err)
		}
		if n := queueSize(t, e.insp); n != 1 {
			t.Fatalf("outbound queue holds %d tasks, want 1", n)
		}
		startWorkers(t, e.opt, e.relay, 2, time.Second)
		waitStatus(t, e.relay, []string{m.ID}, "delivered", 20*time.Second)
		checkExactlyOnce(t, e.fake, map[string][]string{"interrupted": {m.Body}})
	})
	t.Run("TaskCompletesItWithoutRetry", func(t *testing.T) {
		e := newEnv(t, envOptions{noWorkers: true})
		m := msg("interrupted", 1)
		interrupt(t, e, m)
		startWorkers(t, e.opt, e.relay, 2, time.Second)
		waitStatus(t, e.relay, []string{m.ID}, "delivered", 20*time.Second)
		checkExactlyOnce(t, e.fake, map[string][]string{"interrupted": {m.Body}})
	})
}
