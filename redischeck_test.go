package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

func TestParseRedisSetup(t *testing.T) {
	tests := []struct {
		name string
		info []string // INFO's answer of each master
		want []string // substrings, one per warning
	}{
		{"NoevictionWithAOFIsFine", []string{"# Memory\r\nmaxmemory_policy:noeviction\r\n# Persistence\r\naof_enabled:1\r\n"}, nil},
		{"EvictionWarns", []string{"maxmemory_policy:allkeys-lru\r\naof_enabled:1\r\n"}, []string{"allkeys-lru"}},
		{"NoAOFWarns", []string{"maxmemory_policy:noeviction\r\naof_enabled:0\r\n"}, []string{"appendonly yes"}},
		{"BothWarn", []string{"maxmemory_policy:volatile-lru\r\naof_enabled:0\r\n"}, []string{"volatile-lru", "appendonly"}},
		{"NothingKnownNoWarning", []string{"# Server\r\nredis_version:7.2.4\r\n"}, nil},
		// A cluster is as weak as its weakest master.
		{"OneMasterOfThreeEvicts", []string{"maxmemory_policy:noeviction\r\naof_enabled:1\r\n", "maxmemory_policy:allkeys-lru\r\naof_enabled:1\r\n", "maxmemory_policy:noeviction\r\naof_enabled:1\r\n"}, []string{"allkeys-lru"}},
		{"OneMasterWithoutAOF", []string{"maxmemory_policy:noeviction\r\naof_enabled:1\r\n", "maxmemory_policy:noeviction\r\naof_enabled:0\r\n"}, []string{"appendonly yes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseRedisSetup(tt.info...)
			if len(got.Warnings) != len(tt.want) {
				t.Fatalf("warnings = %q, want %d", got.Warnings, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(got.Warnings[i], w) {
					t.Errorf("warning %d = %q, want it to mention %q", i, got.Warnings[i], w)
				}
			}
		})
	}
}

// TestServeShowsRedisSetup: serve logs every problem of the Redis it talks
// to at start, and /v1/status shows what it saw (whatever the test Redis's
// own setup is: compared with INFO's answer).
func TestServeShowsRedisSetup(t *testing.T) {
	db := redistest.New(t)
	if db.Embedded {
		t.Skip("needs a real Redis server: the embedded miniredis answers no INFO sections")
	}
	fake := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", APIToken: "zd-api-token-SECRET1"})
	env := daemonEnv(t, db.URL(), fake.URL())
	want := checkRedisSetup(context.Background(), db.Client)
	if want.Error != "" || want.AOFEnabled == nil || want.MaxmemoryPolicy == "" {
		t.Fatalf("INFO on the test Redis: %+v", want)
	}
	base, logs, stop := startDaemon(t, env)
	defer func() { _ = stop() }()
	for _, w := range want.Warnings {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("start-up logs lack the warning %q", w)
		}
	}
	got := adminStatus(t, base, env).RedisSetup
	if got.MaxmemoryPolicy != want.MaxmemoryPolicy || got.AOFEnabled == nil || *got.AOFEnabled != *want.AOFEnabled || !slices.Equal(got.Warnings, want.Warnings) {
		t.Errorf("/v1/status redis_setup = %+v, want %+v", got, want)
	}
}
