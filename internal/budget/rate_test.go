package budget_test

import (
	"strings"
	"testing"

	"github.com/deskrelay/deskrelay/internal/budget"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		name, in string
		want     budget.Rate
		wantOf   int // of a limit of 700
		wantErr  string
	}{
		{name: "Share", in: "50%", want: budget.Share(50), wantOf: 350},
		{name: "ShareWithSpaces", in: " 70 % ", want: budget.Share(70), wantOf: 490},
		{name: "Number", in: "400", want: budget.PerMinute(400), wantOf: 400},
		{name: "TinyShareIsAtLeastOne", in: "1%", want: budget.Share(1), wantOf: 7},
		{name: "ZeroShare", in: "0%", wantErr: "X: a share must be 1% to 100%"},
		{name: "ShareOver100", in: "101%", wantErr: "X: a share must be 1% to 100%"},
		{name: "Zero", in: "0", wantErr: "X: must be requests per minute"},
		{name: "Word", in: "lots", wantErr: "X: must be requests per minute"},
		{name: "Empty", in: "", wantErr: "X: must be requests per minute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := budget.ParseRate("X", tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRate(%q) = %v, %v; want an error starting %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want || got.Of(700) != tt.wantOf {
				t.Fatalf("ParseRate(%q) = %v (of 700: %d), %v; want %v (%d)", tt.in, got, got.Of(700), err, tt.want, tt.wantOf)
			}
		})
	}
	if got := budget.Share(1).Of(10); got != 1 {
		t.Fatalf("1%% of 10 = %d, want at least 1", got)
	}
}
