package main

import (
	"strings"
	"testing"
)

func TestParseRedisSetup(t *testing.T) {
	tests := []struct {
		name string
		info string
		want []string // substrings, one per warning
	}{
		{"NoevictionWithAOFIsFine", "# Memory\r\nmaxmemory_policy:noeviction\r\n# Persistence\r\naof_enabled:1\r\n", nil},
		{"EvictionWarns", "maxmemory_policy:allkeys-lru\r\naof_enabled:1\r\n", []string{"allkeys-lru"}},
		{"NoAOFWarns", "maxmemory_policy:noeviction\r\naof_enabled:0\r\n", []string{"appendonly yes"}},
		{"BothWarn", "maxmemory_policy:volatile-lru\r\naof_enabled:0\r\n", []string{"volatile-lru", "appendonly"}},
		{"NothingKnownNoWarning", "# Server\r\nredis_version:7.2.4\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseRedisSetup(tt.info)
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
