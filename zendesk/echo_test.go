package zendesk

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// An upstream that echoes what it was sent (the Authorization header in
// X-Request-Id, the credentials in a long error text) never gets a
// credential, or a piece of one, into an error.
func TestEchoedCredentialsAreScrubbed(t *testing.T) {
	const oauthToken = "oauth-ACCESS-abcdefghijklmnop"
	basic := base64.StdEncoding.EncodeToString([]byte(testEmail + "/token:" + testToken))
	tests := []struct {
		name    string
		mod     func(*Config)
		secrets []string
	}{
		{"APIToken", nil, []string{testToken, basic}},
		{"OAuthToken", func(c *Config) { c.Email, c.APIToken, c.OAuthToken = "", "", oauthToken }, []string{oauthToken}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := mustServer(t, func(w http.ResponseWriter, r *http.Request, _ recorded) {
				auth := r.Header.Get("Authorization")
				_, cred, _ := strings.Cut(auth, " ")
				w.Header().Set("X-Request-Id", auth)
				// The credential right where the message is cut (300 bytes).
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": "Bad", "description": strings.Repeat("x", 285) + " " + cred + " " + auth})
			})
			c := mustClient(t, srv.URL, tt.mod)
			_, err := c.CreateTicket(context.Background(), NewTicket{Comment: CommentInput{Body: "hi"}}, "m1")
			ze := AsError(err)
			if ze == nil {
				t.Fatalf("error = %v, want a *Error", err)
			}
			for _, s := range tt.secrets {
				piece := s[:6]
				for what, v := range map[string]string{"RequestID": ze.RequestID, "Message": ze.Message, "Error()": ze.Error()} {
					if strings.Contains(v, piece) {
						t.Errorf("%s holds (a piece of) a credential: %q", what, v)
					}
				}
			}
		})
	}
}
