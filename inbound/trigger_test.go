package inbound_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk"
)

// miniZendesk answers the two reads the trigger path makes; any other path
// fails the test.
type miniZendesk struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	comments map[int64][]zendesk.Comment
	users    map[int64]zendesk.User
	calls    int
}

func newMiniZendesk(t *testing.T) (*miniZendesk, *zendesk.Client) {
	m := &miniZendesk{t: t, comments: map[int64][]zendesk.Comment{}, users: map[int64]zendesk.User{}}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.calls++
		var ticket, user int64
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && scan(r.URL.Path, "/api/v2/tickets/%d/comments", &ticket):
			_ = json.NewEncoder(w).Encode(map[string]any{"comments": m.comments[ticket], "meta": map[string]any{"has_more": false}})
		case r.Method == http.MethodGet && scan(r.URL.Path, "/api/v2/users/%d", &user):
			u, ok := m.users[user]
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				_, _ = w.Write([]byte(`{"error":"RecordNotFound","description":"Not found"}`))
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"user": u})
		default:
			t.Errorf("mini zendesk: unexpected %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(m.srv.Close)
	c, err := zendesk.New(zendesk.Config{BaseURL: m.srv.URL, Email: "relay@example.com", APIToken: "token"})
	if err != nil {
		t.Fatal(err)
	}
	return m, c
}

func scan(path, format string, id *int64) bool {
	n, err := fmt.Sscanf(path, format, id)
	return err == nil && n == 1 && fmt.Sprintf(format, *id) == path
}

func (m *miniZendesk) callCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls
}

func ptr[T any](v T) *T { return &v }

func triggerBody(ticket int64, status string, at time.Time, comment int64, public bool, author int64) []byte {
	return fmt.Appendf(nil, `{"ticket_id":"%d","external_id":"conv","status":%q,"updated_at":%q,"comment_id":"%d","comment_public":"%v","comment_author_id":"%d"}`,
		ticket, status, at.UTC().Format(time.RFC3339), comment, public, author)
}

func TestTriggerBody(t *testing.T) {
	mz, zc := newMiniZendesk(t)
	h := newHarness(t, harnessOptions{zendesk: zc})
	h.link("conv_42", 1001)
	ctx := context.Background()
	if err := h.tickets.RememberOwnComment(ctx, 700); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	mz.users[9] = zendesk.User{ID: ptr(int64(9)), Name: "Agent Smith", Role: "admin"}
	mz.users[77] = zendesk.User{ID: ptr(int64(77)), Name: "Ann Lee", Role: "end-user"}
	mz.comments[1001] = []zendesk.Comment{
		{ID: 700, AuthorID: 77, Body: "own", Public: true, CreatedAt: at.Add(-time.Hour)},
		{ID: 701, AuthorID: 77, Body: "by the requester", Public: true, CreatedAt: at.Add(-time.Minute)},
		{ID: 702, AuthorID: 9, Body: "Hi Ann", HTMLBody: "<p>Hi Ann</p>", Public: true, CreatedAt: at},
	}

	post := func(path string, body []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, h.api.URL+path, bytes.NewReader(body))
		req.SetBasicAuth(targetUser, targetPassword) // the target's login; the webhook ignores it
		if path == "/v1/zendesk/webhook" {
			ts := time.Now().UTC().Format(time.RFC3339)
			req.Header.Set(zendesk.HeaderSignatureTimestamp, ts)
			req.Header.Set(zendesk.HeaderSignature, zendesk.Sign(webhookSecret, ts, body))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s answered %d", path, resp.StatusCode)
		}
	}

	t.Run("OwnAndUnmanagedNeedNoAPICall", func(t *testing.T) {
		post("/v1/zendesk/target", triggerBody(1001, "New", at.Add(-time.Hour), 700, true, 77))
		post("/v1/zendesk/target", triggerBody(2002, "New", at, 900, true, 9))
		h.idle(10 * time.Second)
		if n := mz.callCount(); n != 0 {
			t.Fatalf("%d Zendesk calls, want 0", n)
		}
	})
	t.Run("EndUserCommentNotForwarded", func(t *testing.T) {
		post("/v1/zendesk/target", triggerBody(1001, "Open", at.Add(-time.Minute), 701, true, 77))
		h.idle(10 * time.Second)
	})
	t.Run("AgentReplyAndStatusForwarded", func(t *testing.T) {
		post("/v1/zendesk/webhook", triggerBody(1001, "Pending", at, 702, true, 9))
		testutil.WaitFor(t, 10*time.Second, func() bool { return len(h.sink.events()) >= 3 }, "reply and status")
		h.idle(10 * time.Second)
	})
	t.Run("SameTriggerAgainNothingNew", func(t *testing.T) {
		calls := mz.callCount()
		post("/v1/zendesk/target", triggerBody(1001, "Pending", at.Add(time.Second), 702, true, 9))
		h.idle(10 * time.Second)
		if n := mz.callCount(); n != calls {
			t.Fatalf("%d more Zendesk calls for a comment already forwarded", n-calls)
		}
	})

	got := h.sink.events()
	var ids []string
	for _, ev := range got {
		ids = append(ids, ev.ID)
	}
	want := []string{
		events.StatusEventID(1001, "open", at.Add(-time.Minute)),
		"zd:comment:702",
		events.StatusEventID(1001, "pending", at),
	}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Fatalf("sink got %v, want %v", ids, want)
	}
	c := got[1].Comment
	if c == nil || c.Body != "Hi Ann" || c.HTMLBody != "<p>Hi Ann</p>" || c.Author != (events.Author{ID: 9, Name: "Agent Smith", Role: events.RoleAgent}) ||
		!c.CreatedAt.Equal(at) || got[1].Status != "pending" || got[1].ConversationID != "conv_42" {
		t.Fatalf("comment event %+v %+v", got[1], c)
	}
}

// budget denies the first deny requests, then allows all.
type budget struct {
	mu           sync.Mutex
	deny, denied int
	allowed      int
}

func (b *budget) PauseFor(context.Context, time.Duration) error { return nil }

func (b *budget) Allow(context.Context) (bool, time.Duration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.denied < b.deny {
		b.denied++
		return false, 50 * time.Millisecond, nil
	}
	b.allowed++
	return true, 0, nil
}

func TestTriggerRespectsRateLimit(t *testing.T) {
	mz, zc := newMiniZendesk(t)
	lim := &budget{deny: 3}
	h := newHarness(t, harnessOptions{zendesk: zc, limiter: lim})
	h.link("conv_42", 1001)
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	mz.users[9] = zendesk.User{ID: ptr(int64(9)), Name: "Agent Smith", Role: "agent"}
	mz.comments[1001] = []zendesk.Comment{{ID: 702, AuthorID: 9, Body: "Hi", Public: true, CreatedAt: at}}
	r := h.post(triggerBody(1001, "Open", at, 702, true, 9), webhookSecret, time.Now(), "")
	if r.Status != http.StatusOK {
		t.Fatalf("answered %d", r.Status)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return len(h.sink.events()) == 2 }, "the reply")
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if lim.denied != 3 || lim.allowed != mz.callCount() {
		t.Fatalf("denied %d, allowed %d for %d Zendesk calls", lim.denied, lim.allowed, mz.callCount())
	}
}
