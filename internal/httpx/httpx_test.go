package httpx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
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

func TestSameSiteWrites(t *testing.T) {
	h := SameSiteWrites("https://relay.example.com", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	tests := []struct {
		name    string
		method  string
		host    string
		headers map[string]string
		want    int
	}{
		{name: "OtherOriginRefused", method: http.MethodPost, host: "relay.internal:8080", headers: map[string]string{"Origin": "http://evil.example"}, want: http.StatusForbidden},
		{name: "OtherRefererRefused", method: http.MethodDelete, host: "relay.internal:8080", headers: map[string]string{"Referer": "http://evil.example/x"}, want: http.StatusForbidden},
		{name: "OriginWinsOverReferer", method: http.MethodPost, host: "relay.internal:8080", headers: map[string]string{"Origin": "http://evil.example", "Referer": "http://relay.internal:8080/monitoring/"}, want: http.StatusForbidden},
		{name: "NullOriginRefused", method: http.MethodPost, host: "relay.internal:8080", headers: map[string]string{"Origin": "null"}, want: http.StatusForbidden},
		{name: "GarbageOriginRefused", method: http.MethodPost, host: "relay.internal:8080", headers: map[string]string{"Origin": "::not a url"}, want: http.StatusForbidden},
		{name: "OtherPortRefused", method: http.MethodPost, host: "relay.internal:8080", headers: map[string]string{"Origin": "http://relay.internal:9999"}, want: http.StatusForbidden},
		{name: "SubdomainRefused", method: http.MethodPost, host: "relay.internal:8080", headers: map[string]string{"Sec-Fetch-Site": "same-site"}, want: http.StatusForbidden},
		{name: "CrossSiteFetchRefused", method: http.MethodPut, host: "relay.internal:8080", headers: map[string]string{"Sec-Fetch-Site": "cross-site"}, want: http.StatusForbidden},
		{name: "SameHostPasses", method: http.MethodPost, host: "relay.internal:8080", headers: map[string]string{"Origin": "http://relay.internal:8080", "Sec-Fetch-Site": "same-origin"}, want: http.StatusNoContent},
		{name: "SameHostDefaultPortPasses", method: http.MethodPost, host: "relay.internal", headers: map[string]string{"Origin": "http://relay.internal:80"}, want: http.StatusNoContent},
		{name: "HostCaseIgnored", method: http.MethodPost, host: "Relay.Internal:8080", headers: map[string]string{"Origin": "http://relay.internal:8080"}, want: http.StatusNoContent},
		{name: "PublicURLPasses", method: http.MethodPost, host: "relay.internal:8080", headers: map[string]string{"Origin": "https://relay.example.com"}, want: http.StatusNoContent},
		{name: "PublicURLRefererPasses", method: http.MethodPost, host: "relay.internal:8080", headers: map[string]string{"Referer": "https://relay.example.com/monitoring/queues"}, want: http.StatusNoContent},
		{name: "PublicHostOverPlainHTTPRefused", method: http.MethodPost, host: "relay.internal:8080", headers: map[string]string{"Origin": "http://relay.example.com"}, want: http.StatusForbidden},
		{name: "NoBrowserHeadersPasses", method: http.MethodPost, host: "relay.internal:8080", want: http.StatusNoContent},
		{name: "ReadsFromAnywherePass", method: http.MethodGet, host: "relay.internal:8080", headers: map[string]string{"Origin": "http://evil.example"}, want: http.StatusNoContent},
		{name: "HeadFromAnywherePasses", method: http.MethodHead, host: "relay.internal:8080", headers: map[string]string{"Sec-Fetch-Site": "cross-site"}, want: http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/monitoring/api/queues/outbound:pause", nil)
			r.Host = tt.host
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status = %d %s, want %d", w.Code, w.Body.String(), tt.want)
			}
			if tt.want == http.StatusForbidden {
				var body ErrorBody
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != "cross_site" {
					t.Fatalf("error body = %q (%v), want code cross_site", w.Body.String(), err)
				}
			}
		})
	}
}

func TestRequireLogin(t *testing.T) {
	admin, viewer := Login{User: "admin", Password: "pw"}, Login{User: "viewer", Password: "vpw"}
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	tests := []struct {
		name, method, user, pass string
		viewer                   Login
		want                     int
	}{
		{name: "AdminWrites", method: http.MethodPost, user: "admin", pass: "pw", viewer: viewer, want: http.StatusNoContent},
		{name: "ViewerReads", method: http.MethodGet, user: "viewer", pass: "vpw", viewer: viewer, want: http.StatusNoContent},
		{name: "ViewerHeads", method: http.MethodHead, user: "viewer", pass: "vpw", viewer: viewer, want: http.StatusNoContent},
		{name: "ViewerWriteForbidden", method: http.MethodPost, user: "viewer", pass: "vpw", viewer: viewer, want: http.StatusForbidden},
		{name: "ViewerDeleteForbidden", method: http.MethodDelete, user: "viewer", pass: "vpw", viewer: viewer, want: http.StatusForbidden},
		{name: "ViewerWrongPassword", method: http.MethodGet, user: "viewer", pass: "pw", viewer: viewer, want: http.StatusUnauthorized},
		{name: "ViewerWithAdminPassword", method: http.MethodGet, user: "viewer", pass: "pw", viewer: viewer, want: http.StatusUnauthorized},
		{name: "NoViewerConfigured", method: http.MethodGet, user: "", pass: "", viewer: Login{}, want: http.StatusUnauthorized},
		{name: "AdminWhenNoViewer", method: http.MethodPost, user: "admin", pass: "pw", viewer: Login{}, want: http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := RequireLogin(admin, tt.viewer, "deskrelay admin", next)
			r := httptest.NewRequest(tt.method, "/v1/status", nil)
			r.SetBasicAuth(tt.user, tt.pass)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status = %d %s, want %d", w.Code, w.Body.String(), tt.want)
			}
			if tt.want == http.StatusForbidden && !strings.Contains(w.Body.String(), `"read_only"`) {
				t.Fatalf("body = %s, want code read_only", w.Body.String())
			}
		})
	}
}

func TestViewerSeesItsOwnHandler(t *testing.T) {
	who := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(name)) })
	}
	h := RequireLogin(Login{User: "admin", Password: "pw"}, Login{User: "viewer", Password: "vpw"}, "r", ByLogin(who("admin"), who("viewer")))
	for _, tc := range []struct{ user, pass, want string }{{"admin", "pw", "admin"}, {"viewer", "vpw", "viewer"}} {
		r := httptest.NewRequest(http.MethodGet, "/monitoring/", nil)
		r.SetBasicAuth(tc.user, tc.pass)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Body.String() != tc.want {
			t.Fatalf("%s sees %q, want %q", tc.user, w.Body.String(), tc.want)
		}
	}
}

func TestNotFramable(t *testing.T) {
	h := NotFramable(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/monitoring/", nil))
	for k, want := range map[string]string{
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestWriteJSONNoSniff(t *testing.T) {
	w := httptest.NewRecorder()
	WriteJSON(w, http.StatusOK, map[string]string{"a": "b"})
	if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Fatalf("X-Content-Type-Options = %q, want nosniff", got)
	}
}
