package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// FuzzDecodeMessage feeds POST /v1/messages bodies to the decoder: it never
// panics, answers only 400 or 422 on errors, and what it accepts is a valid
// message that survives a JSON round trip unchanged.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"id":"m1","conversation_id":"c1","sequence":3,"author":{"id":"u","name":"Ann","email":"ann@example.com"},"body":"hi","subject":"s","created_at":"2026-11-24T10:00:00Z","tags":["a"],"custom_fields":[{"id":1,"value":"x"}],"account":"default"}`,
		`{"id":"m1","conversation_id":"c1","author":{"id":"u"},"body":"hi"}`,
		`{"id":"m1","conversation_id":"c1","sequence":1.5,"author":{"id":"u"},"body":"hi"}`,
		`{"id":1}`, `[]`, `null`, `{`, `{"id":"m1"} x`, `{"author":"x"}`, `{"created_at":"bad"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := decodeMessage(body)
		if err != nil {
			if err.status != http.StatusBadRequest && err.status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d for %q", err.status, body)
			}
			if err.code == "" || err.message == "" {
				t.Fatalf("empty error for %q", body)
			}
			return
		}
		if verr := m.Validate(); verr != nil {
			t.Fatalf("accepted an invalid message %q: %v", body, verr)
		}
		again, err2 := json.Marshal(m)
		if err2 != nil {
			t.Fatalf("marshal: %v", err2)
		}
		var back Message
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatalf("round trip of %s: %v", again, err)
		}
		h1, _, _ := m.contentHash()
		h2, _, _ := back.contentHash()
		if h1 != h2 {
			t.Fatalf("content hash changed in a round trip: %s", again)
		}
	})
}

// fieldNamed matches an error message that starts by naming a field:
// "id: …", "author.email: …", "tags[3]: …", "custom_fields[0].id: …".
var fieldNamed = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+|\[\d+\](\.[a-z_]+)?)?: `)

// FuzzIntakeToZendesk drives the real POST /v1/messages handler (on a real
// Redis) and, for what it accepts, sends the ticket creation the relay
// would send to the fake Zendesk: an accepted message always makes a
// request that can be sent (its id a valid Idempotency-Key, as a new and as
// a follow-up ticket); a rejected one is a 4xx, a 422 naming the field.
func FuzzIntakeToZendesk(f *testing.F) {
	for _, s := range []string{
		`{"id":"m1","conversation_id":"c1","sequence":3,"author":{"id":"u","name":"Ann","email":"ann@example.com"},"body":"hi","tags":["a"],"custom_fields":[{"id":1,"value":"x"}]}`,
		`{"id":"m\u0001","conversation_id":"c1","author":{"email":"ann@example.com"},"body":"hi"}`,
		`{"id":"m\u007f","conversation_id":"c1","author":{"email":"ann@example.com"},"body":"hi"}`,
		`{"id":"m2","conversation_id":"c\u0000","author":{"email":"ann@example.com"},"body":"hi"}`,
		`{"id":"m3","conversation_id":"c1","sequence":9223372036854775807,"author":{"email":"ann@example.com"},"body":"hi"}`,
		`{"id":"m4","conversation_id":"c1","sequence":100000000000000000,"author":{"email":"ann@example.com"},"body":"hi"}`,
		`{"id":"m5:r1","conversation_id":"c1","author":{"id":"u1"},"body":"hi"}`,
		`{"id":"é","conversation_id":"c1","author":{"email":"ann@example.com"},"body":"hi"}`,
		`{"id":1}`, `[]`, `"x"`, `{`,
	} {
		f.Add([]byte(s))
	}
	db := redistest.New(f)
	fake := zendesktest.NewServer(f, zendesktest.Config{RateLimit: 1 << 30, UpdateTicketLimit: 1 << 30, Logf: func(string, ...any) {}})
	zd, err := zendesk.New(zendesk.Config{BaseURL: fake.URL(), Email: fake.Email(), APIToken: fake.APIToken()})
	if err != nil {
		f.Fatal(err)
	}
	r, err := New(Config{}, Deps{Redis: db.Client, Asynq: db.AsynqOpt(), Log: zerolog.Nop()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = r.Close() })
	h := PostMessage(Single(r))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/messages", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusAccepted, http.StatusOK, http.StatusConflict:
			m, derr := decodeMessage(body)
			if derr != nil {
				t.Fatalf("answered %d to a body the decoder refuses (%s): %q", w.Code, derr.message, body)
			}
			sendable(t, r, zd, fake, m.ID)
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		case http.StatusUnprocessableEntity:
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error.Code != "invalid_field" || !fieldNamed.MatchString(e.Error.Message) {
				t.Fatalf("422 without a field named: %s for %q", w.Body.String(), body)
			}
		default:
			t.Fatalf("status %d (%s) for %q", w.Code, w.Body.String(), body)
		}
	})
}

// sendable sends the ticket creations the relay would make for message id
// (a first ticket and a follow-up) and fails unless Zendesk got both.
func sendable(t *testing.T, r *Relay, zd *zendesk.Client, fake *zendesktest.Server, id string) {
	t.Helper()
	if !ValidID(id) {
		t.Fatalf("accepted id %q is not a valid id", id)
	}
	rec, err := r.st.load(context.Background(), id)
	if err != nil {
		t.Fatalf("load %q: %v", id, err)
	}
	for _, why := range []string{"", "limit"} {
		nt, key := newTicket(rec, int64(len(why)), why)
		if nt.Requester == nil {
			nt.RequesterID = fake.APIUserID()
		}
		_, err := zd.CreateTicket(context.Background(), nt, key)
		if ze := zendesk.AsError(err); err != nil && (ze == nil || ze.Status == 0) {
			t.Fatalf("ticket creation for accepted id %q (key %q) was not sent: %v", id, key, err)
		}
	}
}
