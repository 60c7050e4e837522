package queues

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/zendesk"
)

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Policy
		wantErr bool
	}{
		{name: "ZeroTakesTheDefault", p: Policy{}},
		{name: "OneSecondIsValid", p: Policy{MaxDelay: time.Second}},
		{name: "TinyMaxDelayNamesSetting", p: Policy{MaxDelay: time.Millisecond}, wantErr: true},
		{name: "NegativeMaxDelayNamesSetting", p: Policy{MaxDelay: -time.Second}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantErr != (err != nil) || (err != nil && !strings.Contains(err.Error(), "queues: MaxDelay: ")) {
				t.Fatalf("Validate = %v, want error %v naming the MaxDelay field", err, tt.wantErr)
			}
		})
	}
}

// TestRetryPolicy pins retry.go; the README's "Retry semantics" is this table.
func TestRetryPolicy(t *testing.T) {
	top := func(n int64) int64 { return n - 1 } // the ceiling of full jitter
	bottom := func(int64) int64 { return 0 }
	p := Policy{BaseDelay: time.Second, MaxDelay: time.Hour}
	temp := &zendesk.Error{Op: "update ticket", Status: 503, Kind: zendesk.KindTemporary}
	tests := []struct {
		name      string
		err       error
		retried   int
		rand      func(int64) int64
		wantDelay time.Duration
		wantFail  bool // IsFailure: counts as an attempt
		wantSkip  bool // asynq.SkipRetry: failed for good
	}{
		{name: "WaitRetriesAfterExactlyD", err: Wait(3*time.Second, errors.New("turn")), wantDelay: 3 * time.Second},
		{name: "WaitHasAFloorOf100ms", err: Wait(time.Millisecond, nil), wantDelay: 100 * time.Millisecond},
		{name: "WrappedWaitStillWaits", err: fmt.Errorf("ctx: %w", Wait(2*time.Second, nil)), retried: 9, wantDelay: 2 * time.Second},
		{name: "RateLimitedWaitsRetryAfter", err: &zendesk.Error{Kind: zendesk.KindRateLimited, Status: 429, RetryAfter: 7 * time.Second}, retried: 5, wantDelay: 7 * time.Second},
		{name: "RateLimitedWithoutRetryAfterWaits1s", err: fmt.Errorf("x: %w", &zendesk.Error{Kind: zendesk.KindRateLimited, Status: 429}), wantDelay: time.Second},
		{name: "TemporaryFirstRetryUpTo1s", err: temp, rand: top, wantDelay: time.Second, wantFail: true},
		{name: "TemporaryFourthRetryUpTo8s", err: temp, retried: 3, rand: top, wantDelay: 8 * time.Second, wantFail: true},
		{name: "TemporaryCappedAtMaxDelay", err: temp, retried: 40, rand: top, wantDelay: time.Hour, wantFail: true},
		{name: "HugeRetryCountDoesNotOverflow", err: temp, retried: math.MaxInt32, rand: top, wantDelay: time.Hour, wantFail: true},
		{name: "NegativeRetryCountIsFirst", err: temp, retried: -1, rand: top, wantDelay: time.Second, wantFail: true},
		{name: "JitterHasAFloorOf100ms", err: temp, retried: 3, rand: bottom, wantDelay: 100 * time.Millisecond, wantFail: true},
		{name: "OtherErrorBacksOff", err: errors.New("redis: connection refused"), retried: 1, rand: top, wantDelay: 2 * time.Second, wantFail: true},
		{name: "FailUnauthorizedSkipsRetry", err: Fail("unauthorized", &zendesk.Error{Kind: zendesk.KindUnauthorized, Status: 401}), rand: top, wantDelay: time.Second, wantFail: true, wantSkip: true},
		{name: "FailInvalidSkipsRetry", err: Fail("invalid", &zendesk.Error{Kind: zendesk.KindInvalid, Status: 400}), rand: top, wantDelay: time.Second, wantFail: true, wantSkip: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := p
			p.rand = tt.rand
			if got := p.RetryDelay(tt.retried, tt.err, asynq.NewTask("x", nil)); got != tt.wantDelay {
				t.Errorf("RetryDelay = %s, want %s", got, tt.wantDelay)
			}
			if got := IsFailure(tt.err); got != tt.wantFail {
				t.Errorf("IsFailure = %v, want %v", got, tt.wantFail)
			}
			if got := errors.Is(tt.err, asynq.SkipRetry); got != tt.wantSkip {
				t.Errorf("errors.Is(SkipRetry) = %v, want %v", got, tt.wantSkip)
			}
		})
	}
}

func TestBackoffStaysWithinCeiling(t *testing.T) {
	p := Policy{BaseDelay: 500 * time.Millisecond, MaxDelay: 10 * time.Second}
	for n := range 70 {
		ceiling := 10 * time.Second
		if n < 5 {
			ceiling = 500 * time.Millisecond << n
		}
		for range 50 {
			if d := p.Backoff(n); d < MinDelay || d > ceiling {
				t.Fatalf("Backoff(%d) = %s, want within [%s, %s]", n, d, MinDelay, ceiling)
			}
		}
	}
}

func TestMaxRetryFitsAsynq(t *testing.T) {
	if MaxRetry != math.MaxInt32 {
		t.Fatalf("MaxRetry = %d, want math.MaxInt32 (asynq stores int32)", MaxRetry)
	}
}
