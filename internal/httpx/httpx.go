// Package httpx holds the small HTTP helpers every deskrelay endpoint shares:
// JSON answers, the error body {"error": {"code", "message"}}, constant-time
// credential checks (bearer, basic, an admin and a read-only login), and the
// guards of the operators' pages (same-site writes, no framing).
//
// It must not import any other deskrelay package.
package httpx

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
)

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong: a stable machine code and a sentence for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes {"error": {"code": code, "message": message}}.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: message}})
}

// Equal compares two secrets in constant time (also for different lengths).
func Equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// BearerToken returns the token of an "Authorization: Bearer …" header.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	return strings.TrimSpace(h[len(p):]), true
}

// RequireBearer wraps next so that it runs only with the right bearer token;
// otherwise it answers 401 with a JSON error.
func RequireBearer(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := BearerToken(r)
		if !ok || !Equal(got, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="deskrelay"`)
			WriteError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RequireBasic wraps next so that it runs only with the right basic-auth
// user and password; otherwise it answers 401.
func RequireBasic(user, password, realm string, next http.Handler) http.Handler {
	return RequireLogin(Login{User: user, Password: password}, Login{}, realm, next)
}
