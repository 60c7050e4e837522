package main

import (
	"testing"

	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// newTestZendesk starts the fake Zendesk with the credentials daemonEnv uses.
func newTestZendesk(t *testing.T) string {
	t.Helper()
	s := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	return s.URL()
}
