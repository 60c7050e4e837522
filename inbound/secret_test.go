package inbound_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/inbound"
	"github.com/deskrelay/deskrelay/internal/keys"
	"github.com/deskrelay/deskrelay/internal/testutil"
	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// TestSecretReadInBackground: with a webhook id and no secret, Zendesk
// being down at start does not turn the receiver off: it answers 503 with
// Retry-After while it waits, says so (status, Redis, metric), and takes
// webhooks once Zendesk answers.
func TestSecretReadInBackground(t *testing.T) {
	zd := zendesktest.NewServer(t)
	hook := zd.AddWebhook("https://relay.example.com/v1/zendesk/webhook", "zendesk-given-secret")
	zd.Down()
	zc, err := zendesk.New(zendesk.Config{BaseURL: zd.URL(), Email: zd.Email(), APIToken: zd.APIToken()})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{zendesk: zc, cfg: func(c *inbound.Config) { c.SecretRetry = 20 * time.Millisecond },
		acct: func(a *inbound.Account) { a.WebhookSecret, a.WebhookID = "", hook }})
	body := commentBody(1001, 1900, "conv_42", true, true, time.Now())
	testutil.WaitFor(t, 5*time.Second, func() bool { return h.status().LastError != "" }, "a failed read of the secret")
	st := h.status()
	if st.State != inbound.ReceiverWaiting {
		t.Fatalf("receiver state %+v, want waiting_for_secret", st)
	}
	if r := h.post(body, "zendesk-given-secret", time.Now(), ""); r.Status != http.StatusServiceUnavailable || r.RetryAfter != "10" {
		t.Fatalf("webhook while waiting answered %d Retry-After %q, want 503 with Retry-After: 10", r.Status, r.RetryAfter)
	}
	if got := h.metric("deskrelay_webhook_receiver_state", "waiting_for_secret"); got != 1 {
		t.Fatalf("deskrelay_webhook_receiver_state{state=waiting_for_secret} = %v, want 1", got)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool {
		rs, ok, err := inbound.ReadReceiverState(context.Background(), h.rdb, keys.Default)
		return err == nil && ok && rs.State == inbound.ReceiverWaiting
	}, "the waiting state in Redis")

	zd.Up()
	testutil.WaitFor(t, 10*time.Second, func() bool { return h.status().State == inbound.ReceiverOn }, "the receiver to read its secret")
	if r := h.post(body, "zendesk-given-secret", time.Now(), ""); r.Status != http.StatusOK {
		t.Fatalf("webhook after the secret was read answered %d %s", r.Status, r.Body)
	}
	if got := h.metric("deskrelay_webhook_receiver_state", "on"); got != 1 {
		t.Fatalf("deskrelay_webhook_receiver_state{state=on} = %v, want 1", got)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool {
		rs, ok, err := inbound.ReadReceiverState(context.Background(), h.rdb, keys.Default)
		return err == nil && ok && rs.State == inbound.ReceiverOn
	}, "the on state in Redis")
}

// TestSecretWebhookNotFound: a webhook id Zendesk does not know is an error
// naming the setting, not a start-up failure.
func TestSecretWebhookNotFound(t *testing.T) {
	zd := zendesktest.NewServer(t)
	zc, err := zendesk.New(zendesk.Config{BaseURL: zd.URL(), Email: zd.Email(), APIToken: zd.APIToken()})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{zendesk: zc, noWorkers: true, cfg: func(c *inbound.Config) { c.SecretRetry = 20 * time.Millisecond },
		acct: func(a *inbound.Account) { a.WebhookSecret, a.WebhookID = "", "01NOSUCHWEBHOOK" }})
	testutil.WaitFor(t, 5*time.Second, func() bool { return h.status().LastError != "" }, "a failed read of the secret")
	st := h.status()
	want := "webhook 01NOSUCHWEBHOOK not found in Zendesk: check DESKRELAY_ZENDESK_WEBHOOK_ID"
	if st.State != inbound.ReceiverWaiting || !strings.Contains(st.LastError, want) {
		t.Fatalf("receiver status %+v, want waiting with %q", st, want)
	}
}

// TestReceiverOff: without a secret or a webhook id the receiver is off.
func TestReceiverOff(t *testing.T) {
	h := newHarness(t, harnessOptions{noWorkers: true, acct: func(a *inbound.Account) { a.WebhookSecret = "" }})
	if st := h.status(); st.State != inbound.ReceiverOff {
		t.Fatalf("receiver state %+v, want off", st)
	}
	r := h.post(commentBody(1001, 1, "conv", true, true, time.Now()), webhookSecret, time.Now(), "")
	if r.Status != http.StatusNotFound || !strings.Contains(r.Body, "DESKRELAY_WEBHOOK_SECRET") {
		t.Fatalf("off receiver answered %d %s, want 404 naming DESKRELAY_WEBHOOK_SECRET", r.Status, r.Body)
	}
}

// secretSource is a fake Zendesk signing-secret endpoint.
type secretSource struct {
	mu     sync.Mutex
	secret string
	calls  int
}

func (s *secretSource) WebhookSigningSecret(context.Context, string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return s.secret, nil
}

// TestRefreshSecret: RefreshSecret reads the secret again, at most once a
// minute.
func TestRefreshSecret(t *testing.T) {
	src := &secretSource{secret: "first"}
	h := newHarness(t, harnessOptions{noWorkers: true, secrets: src, acct: func(a *inbound.Account) {
		a.WebhookSecret, a.WebhookID = "", "01HOOK"
	}})
	testutil.WaitFor(t, 5*time.Second, func() bool { return h.status().State == inbound.ReceiverOn }, "the first secret")
	src.mu.Lock()
	src.secret = "second"
	src.mu.Unlock()
	if err := h.recv.RefreshSecret(context.Background(), keys.DefaultAccount); err != nil {
		t.Fatal(err)
	}
	body := commentBody(1001, 1, "conv", true, true, time.Now())
	if r := h.post(body, "second", time.Now(), ""); r.Status != http.StatusOK {
		t.Fatalf("webhook signed with the refreshed secret answered %d %s", r.Status, r.Body)
	}
	err := h.recv.RefreshSecret(context.Background(), keys.DefaultAccount)
	if !errors.Is(err, inbound.ErrRefreshTooSoon) {
		t.Fatalf("second refresh within a minute: %v, want ErrRefreshTooSoon", err)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.calls != 2 {
		t.Fatalf("Zendesk asked %d times, want 2", src.calls)
	}
}

// TestRotatedSecretReadAgain: Zendesk's calls signed with a secret this
// replica does not have (rotated in Zendesk, or re-read by the guardian on
// another replica) make the receiver read the secret again itself, at most
// once a minute, so every replica recovers without a restart.
func TestRotatedSecretReadAgain(t *testing.T) {
	src := &secretSource{secret: "first"}
	h := newHarness(t, harnessOptions{noWorkers: true, secrets: src, acct: func(a *inbound.Account) {
		a.WebhookSecret, a.WebhookID = "", "01HOOK"
	}})
	testutil.WaitFor(t, 5*time.Second, func() bool { return h.status().State == inbound.ReceiverOn }, "the first secret")
	src.mu.Lock()
	src.secret = "second" // rotated in Zendesk
	src.mu.Unlock()
	body := commentBody(1001, 1, "conv", true, true, time.Now())
	if r := h.post(body, "second", time.Now(), ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("webhook signed with the rotated secret answered %d before the re-read, want 401", r.Status)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool {
		return h.post(body, "second", time.Now(), "").Status == http.StatusOK
	}, "a webhook signed with the rotated secret accepted after the receiver read it again")
	for range 5 { // more failures within the minute ask Zendesk no more
		h.post(body, "third", time.Now(), "")
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.calls != 2 {
		t.Fatalf("Zendesk asked %d times for the secret, want 2 (start, one re-read)", src.calls)
	}
}
