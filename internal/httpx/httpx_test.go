package httpx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRequireBearer(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := RequireBearer("s3cret", ok)
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{name: "RightTokenPasses", header: "Bearer s3cret", want: http.StatusNoContent},
		{name: "SchemeIsCaseInsensitive", header: "bearer s3cret", want: http.StatusNoContent},
		{name: "WrongTokenRejected", header: "Bearer s3cre", want: http.StatusUnauthorized},
		{name: "MissingRejected", header: "", want: http.StatusUnauthorized},
		{name: "BasicRejected", header: "Basic czNjcmV0", want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/messages", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d", w.Code, tt.want)
			}
			if tt.want == http.StatusUnauthorized {
				var body ErrorBody
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != "unauthorized" {
					t.Fatalf("error body = %q (%v)", w.Body.String(), err)
				}
			}
		})
	}
}

func TestRequireBasic(t *testing.T) {
	h := RequireBasic("admin", "pw", "deskrelay", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	for _, tc := range []struct {
		name, user, pass string
		want             int
	}{
		{"RightCredentialsPass", "admin", "pw", http.StatusOK},
		{"WrongPasswordRejected", "admin", "px", http.StatusUnauthorized},
		{"WrongUserRejected", "root", "pw", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/status", nil)
			r.SetBasicAuth(tc.user, tc.pass)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status = %d, want %d", w.Code, tc.want)
			}
		})
	}
}
