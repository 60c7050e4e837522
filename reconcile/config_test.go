package reconcile

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" means valid
	}{
		{name: "ZeroIsValid", cfg: Config{}},
		{name: "WebhookWithPublicURL", cfg: Config{Interval: 5 * time.Minute, WebhookID: "01H", PublicURL: "https://relay.example.com/"}},
		{name: "NegativeIntervalNamesTheSetting", cfg: Config{Interval: -time.Second}, want: "reconcile: Interval: "},
		{name: "TinyIntervalNamesTheSetting", cfg: Config{Interval: time.Millisecond}, want: "reconcile: Interval: "},
		{name: "WebhookAndTargetNamesTheSetting", cfg: Config{WebhookID: "01H", TargetID: 7}, want: "reconcile: TargetID: "},
		{name: "BadPublicURLNamesTheSetting", cfg: Config{PublicURL: "relay.example.com"}, want: "reconcile: PublicURL: "},
		{name: "PublicURLWithCredentials", cfg: Config{PublicURL: "https://u:p@relay.example.com"}, want: "reconcile: PublicURL: must not carry credentials"},
		{name: "NegativeLag", cfg: Config{Lag: -time.Second}, want: "Lag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.withDefaults().validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("validate = %v, want an error containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "u:p@") {
				t.Fatalf("error echoes credentials: %v", err)
			}
		})
	}
}

func TestNewRequiresDeps(t *testing.T) {
	if _, err := New(Config{}, Deps{}); err == nil || !strings.Contains(err.Error(), "Deps.Redis") {
		t.Fatalf("New without deps: %v", err)
	}
}
