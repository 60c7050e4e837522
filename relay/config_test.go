package relay_test

import (
	"strings"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/redistest"
	"github.com/deskrelay/deskrelay/relay"
)

func TestConfigValidate(t *testing.T) {
	db := redistest.New(t)
	tests := []struct {
		name    string
		cfg     relay.Config
		wantErr string
	}{
		{name: "DefaultsAreValid", cfg: relay.Config{}},
		{name: "NegativeGapTimeoutNamesSetting", cfg: relay.Config{OrderGapTimeout: -time.Second}, wantErr: "relay: OrderGapTimeout: "},
		{name: "NegativeRateLimitNamesSetting", cfg: relay.Config{RateLimit: -1}, wantErr: "relay: RateLimit: "},
		{name: "ShortAttemptTimeoutNamesField", cfg: relay.Config{AttemptTimeout: time.Second}, wantErr: "AttemptTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := relay.New(tt.cfg, relay.Deps{Redis: db.Client, Asynq: db.AsynqOpt(), Log: testLogger(t)})
			if r != nil {
				defer r.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("New error = %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
	t.Run("MissingRedisIsError", func(t *testing.T) {
		if _, err := relay.New(relay.Config{}, relay.Deps{}); err == nil {
			t.Fatal("New without Redis succeeded")
		}
	})
}
