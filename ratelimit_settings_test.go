package main

import (
	"strings"
	"testing"

	"github.com/deskrelay/deskrelay/internal/budget"
)

// TestRateLimitSettings: DESKRELAY_ZENDESK_RATE_LIMIT and
// DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT take a number a minute or a share of
// the limit Zendesk reports.
func TestRateLimitSettings(t *testing.T) {
	tests := []struct {
		name, env, value string
		wantErr          string // "" for valid
	}{
		{name: "ShareOfAccount", env: "DESKRELAY_ZENDESK_RATE_LIMIT", value: "50%"},
		{name: "NumberForAccount", env: "DESKRELAY_ZENDESK_RATE_LIMIT", value: "400"},
		{name: "ShareOfUpdates", env: "DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT", value: "70%"},
		{name: "NumberForUpdates", env: "DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT", value: "100"},
		{name: "WordNamesSetting", env: "DESKRELAY_ZENDESK_RATE_LIMIT", value: "fast", wantErr: "DESKRELAY_ZENDESK_RATE_LIMIT: "},
		{name: "ShareOver100NamesSetting", env: "DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT", value: "150%", wantErr: "DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT: "},
		{name: "ZeroNamesSetting", env: "DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT", value: "0", wantErr: "DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT: "},
	}
	t.Run("Defaults", func(t *testing.T) {
		v := values{}
		for _, s := range settings {
			v[s.env] = s.def
		}
		cfg, err := parseConfig(v, needs{})
		if err != nil || cfg.single.rateLimit != budget.Share(50) || cfg.single.updateRateLimit != budget.Share(70) {
			t.Fatalf("defaults: %v, %v (%v); want 50%% and 70%%", cfg.single.rateLimit, cfg.single.updateRateLimit, err)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := values{}
			for _, s := range settings {
				v[s.env] = s.def
			}
			v[tt.env] = tt.value
			cfg, err := parseConfig(v, needs{})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("%s=%s: %v; want valid", tt.env, tt.value, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("%s=%s: err = %v; want one naming %q", tt.env, tt.value, err, tt.wantErr)
			case err == nil:
				got := map[string]string{"DESKRELAY_ZENDESK_RATE_LIMIT": cfg.single.rateLimit.String(), "DESKRELAY_ZENDESK_UPDATE_RATE_LIMIT": cfg.single.updateRateLimit.String()}
				if got[tt.env] != tt.value {
					t.Fatalf("%s=%s read as %s", tt.env, tt.value, got[tt.env])
				}
			}
		})
	}
}
