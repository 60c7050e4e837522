package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The upgrade fixture: a Redis dump made by an older release, and what it
// holds (testdata/upgrade/README.md says how it was made). The generator
// (upgrade_gen_test.go, build tag upgradefixture) writes both; the upgrade
// test (upgrade_test.go) reads them. Only this file's types are shared.
const (
	upgradeFixtureDir  = "testdata/upgrade"
	upgradeFixtureRDB  = "v0-780b922.rdb"
	upgradeManifestRel = "manifest.json"
)

// upgradeManifest is everything the upgrade test needs to assert against a
// fixture: the settings it was made with, the fake Zendesk's contents (which
// are not in Redis), and the ids of what Redis holds, by expected state.
type upgradeManifest struct {
	Commit    string    `json:"commit"`
	CreatedAt time.Time `json:"created_at"`
	// Settings are the DESKRELAY_* values the fixture was made with, minus
	// the addresses (Redis, Zendesk, sink, listen, spool), which the test
	// chooses afresh. All are made-up test values.
	Settings map[string]string `json:"settings"`
	OAuth    fixtureOAuth      `json:"oauth"`
	// Tickets are the fake Zendesk's tickets, in id order.
	Tickets   []fixtureTicket  `json:"tickets"`
	Messages  fixtureMessages  `json:"messages"`
	Events    fixtureEvents    `json:"events"`
	Reconcile fixtureReconcile `json:"reconcile"`
}

type fixtureOAuth struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	// ConfiguredRefreshToken is DESKRELAY_ZENDESK_OAUTH_REFRESH_TOKEN (spent
	// long ago: Zendesk rotates refresh tokens).
	ConfiguredRefreshToken string `json:"configured_refresh_token"`
	// AccessToken and RefreshToken are the rotated tokens stored in Redis at
	// the end; the fake issued the access token valid until AccessExpiry.
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	AccessExpiry time.Time `json:"access_expiry"`
	Refreshes    int       `json:"refreshes"`
}

type fixtureTicket struct {
	ID             int64  `json:"id"`
	ExternalID     string `json:"external_id"` // the conversation
	Subject        string `json:"subject"`
	RequesterID    int64  `json:"requester_id"`
	RequesterName  string `json:"requester_name"`
	RequesterEmail string `json:"requester_email"`
	// Comments are the ticket's comments in order: the first is the
	// description (written by deskrelay), then end-user comments written by
	// deskrelay, then agent comments (Agent true).
	Comments []fixtureComment `json:"comments"`
}

type fixtureComment struct {
	Body  string `json:"body"`
	Agent bool   `json:"agent,omitempty"`
}

type fixtureMessage struct {
	ID             string `json:"id"`
	ConversationID string `json:"conversation_id"`
	Sequence       int    `json:"sequence"`
	AuthorName     string `json:"author_name"`
	AuthorEmail    string `json:"author_email"`
	Body           string `json:"body"`
	// TicketID is the ticket the message is (or must end up) in; 0 when the
	// conversation has no ticket yet.
	TicketID int64 `json:"ticket_id"`
}

func (m fixtureMessage) json() string {
	b, _ := json.Marshal(map[string]any{
		"id": m.ID, "conversation_id": m.ConversationID, "sequence": m.Sequence,
		"author": map[string]string{"name": m.AuthorName, "email": m.AuthorEmail}, "body": m.Body,
	})
	return string(b)
}

type fixtureMessages struct {
	Delivered          []fixtureMessage `json:"delivered"`
	Queued             []fixtureMessage `json:"queued"` // accepted while Zendesk was down, in posting order
	FailedUnauthorized []fixtureMessage `json:"failed_unauthorized"`
	FailedInvalid      []fixtureMessage `json:"failed_invalid"`
}

type fixtureEvent struct {
	ID       string `json:"id"` // the sink event id (webhook-id)
	TicketID int64  `json:"ticket_id"`
	// WebhookBody is the body Zendesk posted to /v1/zendesk/webhook; the
	// test signs it again with a fresh timestamp to post it a second time.
	WebhookBody string `json:"webhook_body"`
}

type fixtureEvents struct {
	Delivered []fixtureEvent `json:"delivered"` // in the ledger, already at the sink
	Pending   []fixtureEvent `json:"pending"`   // accepted, sink delivery still to do
}

type fixtureReconcile struct {
	WebhookID             string `json:"webhook_id"` // the old fake's; the test's fake has another
	Checkpoint            int64  `json:"checkpoint"` // unix seconds
	InvocationsCheckpoint int64  `json:"invocations_checkpoint"`
}

func readUpgradeManifest(t *testing.T) upgradeManifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(upgradeFixtureDir, upgradeManifestRel))
	if err != nil {
		t.Fatalf("read the upgrade fixture's manifest: %v", err)
	}
	var m upgradeManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("parse %s: %v", upgradeManifestRel, err)
	}
	return m
}
